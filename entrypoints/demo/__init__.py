"""`make run`: the demo and its embedded servers (a local PostgreSQL from pgserver, moto in server
mode). They are not adapters of any port; the tests start the same servers for themselves."""
