"""The stall watch's rules (`domain.observe.stall_watch`) on a clock the tests move, and the progress lines of a
command without a terminal (`entrypoints.cli.progress.StatusLine`)."""

from __future__ import annotations

import io

import pytest

from user_migration.domain.observe.stall_watch import NoticeKind, StallNotices, StallWatch
from user_migration.entrypoints.cli.progress import StatusLine

DYNAMODB = "DynamoDB"
ENDPOINT = "http://127.0.0.1:8000"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def watch(clock: Clock) -> StallWatch:
    return StallWatch(clock)


def test_a_request_waiting_while_the_dependency_answers_nothing_is_a_stall_from_its_start(watch, clock):
    token = watch.begin(DYNAMODB, ENDPOINT, "UpdateItem (changing a segment lease)")
    clock.advance(12)
    [stall] = watch.stalls(at_least=10)
    assert (stall.dependency, stall.endpoint, stall.seconds, stall.waiting) == (DYNAMODB, ENDPOINT, 12, 1)
    assert stall.text() == (
        "DynamoDB at http://127.0.0.1:8000 has not answered for 12 s: UpdateItem (changing a segment lease), "
        "still waiting for its answer"
    )
    watch.ended(token, answered=True)
    assert watch.stalls() == []


def test_a_slow_request_is_no_stall_while_the_dependency_answers_others(watch, clock):
    watch.begin(DYNAMODB, ENDPOINT, "Scan")
    for _ in range(6):
        clock.advance(5)
        watch.ended(watch.begin(DYNAMODB, ENDPOINT, "PutItem"), answered=True)
    assert watch.stalls(at_least=10) == []
    clock.advance(11)  # then it stops answering: counted from its last answer
    [stall] = watch.stalls(at_least=10)
    assert (stall.seconds, stall.what) == (11, "Scan")


def test_the_retry_in_progress_is_named_and_timeouts_are_counted_per_dependency(watch, clock):
    token = watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    watch.timed_out(DYNAMODB)
    watch.retrying(token, 1, "ReadTimeoutError")
    watch.begin("PostgreSQL", "db:5432/app", "a query on users")
    watch.timed_out("PostgreSQL")
    watch.timed_out("PostgreSQL")
    clock.advance(15)
    stalls = watch.stalls(at_least=10)
    assert [stall.dependency for stall in stalls] == ["DynamoDB", "PostgreSQL"]
    assert stalls[0].retrying == "attempt 2 after ReadTimeoutError"
    assert "retrying (attempt 2 after ReadTimeoutError)" in stalls[0].text()
    assert watch.timeouts == {"DynamoDB": 1, "PostgreSQL": 2}


def test_a_request_whose_waiter_is_gone_is_no_stall(watch, clock):
    waiting = [True]
    watch.begin(DYNAMODB, ENDPOINT, "PutItem", alive=lambda: waiting[0])
    clock.advance(20)
    assert len(watch.stalls(at_least=10)) == 1
    waiting[0] = False
    assert watch.stalls() == []


def test_a_request_ended_without_an_answer_does_not_count_as_one(watch, clock):
    first = watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    clock.advance(4)
    watch.ended(first, answered=False)
    assert watch.answered_at(DYNAMODB) is None
    watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    clock.advance(8)
    assert watch.stalls(at_least=10) == []
    clock.advance(2)
    assert [stall.seconds for stall in watch.stalls(at_least=10)] == [10]


def test_notices_say_a_stall_at_ten_seconds_again_every_thirty_and_its_end_once(watch, clock):
    notices = StallNotices(watch, patience_seconds=0)
    token = watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    said = []
    for _ in range(70):
        clock.advance(1)
        said += [(clock.now - 1000, notice.kind, round(notice.stall.seconds)) for notice in notices.due()]
    assert said == [(10, NoticeKind.STALLED, 10), (40, NoticeKind.STALLED, 40), (70, NoticeKind.STALLED, 70)]
    clock.advance(3)
    watch.ended(token, answered=True)
    [notice] = notices.due()
    assert notice.kind is NoticeKind.ANSWERS_AGAIN
    assert notice.text(0) == "DynamoDB at http://127.0.0.1:8000 answers again, after 73 s without an answer"
    assert notices.due() == []


def test_notices_give_up_at_the_patience_and_say_when(watch, clock):
    notices = StallNotices(watch, patience_seconds=25)
    watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    kinds = []
    for _ in range(25):
        clock.advance(1)
        kinds += [(clock.now - 1000, notice.kind, notice.text(25)) for notice in notices.due()]
    assert [(at, kind) for at, kind, _ in kinds] == [(10, NoticeKind.STALLED), (25, NoticeKind.GIVING_UP)]
    assert kinds[0][2].endswith("; giving up in 15 s")
    assert "giving up after DEPENDENCY_PATIENCE_SECONDS=25" in kinds[1][2]
    assert "DynamoDB at http://127.0.0.1:8000" in kinds[1][2]


def test_a_patience_shorter_than_the_notice_is_said_before_giving_up(watch, clock):
    notices = StallNotices(watch, patience_seconds=5)
    watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    clock.advance(5)
    assert [notice.kind for notice in notices.due()] == [NoticeKind.GIVING_UP]


def test_a_request_no_longer_waited_on_ends_a_stall_without_saying_it_answers(watch, clock):
    notices = StallNotices(watch)
    waiting = [True]
    watch.begin(DYNAMODB, ENDPOINT, "PutItem", alive=lambda: waiting[0])
    clock.advance(10)
    assert [notice.kind for notice in notices.due()] == [NoticeKind.STALLED]
    waiting[0] = False
    clock.advance(1)
    assert notices.due() == []


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def test_without_a_terminal_progress_is_a_line_every_interval_even_when_nothing_moves(clock):
    stream = Pipe()
    line = StatusLine(stream, interval_seconds=30, clock=clock)
    line.show("100 done")
    clock.advance(29)
    line.show("200 done")  # too soon for a line of its own
    line.tick()
    assert stream.getvalue() == ""
    clock.advance(1)
    line.tick()
    clock.advance(30)
    line.tick()  # nothing moved: the last text again
    clock.advance(10)
    line.show("300 done")
    line.close()
    assert stream.getvalue() == "200 done\n200 done\n"


def test_without_a_terminal_a_command_that_did_nothing_yet_says_how_long_it_has_worked(clock):
    stream = Pipe()
    line = StatusLine(stream, interval_seconds=30, clock=clock)
    clock.advance(31)
    line.tick()
    assert stream.getvalue() == "working for 0:31, no progress reported yet\n"


def test_retries_of_a_request_that_got_no_answer_are_one_silence(watch, clock):
    first = watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    clock.advance(6)
    watch.failed(first, "a timeout")
    clock.advance(2)  # the pause before the retry: nothing waits, but the silence goes on
    assert watch.stalls() == []
    watch.begin(DYNAMODB, ENDPOINT, "PutItem")
    clock.advance(3)
    [stall] = watch.stalls()
    assert (stall.seconds, stall.retrying) == (11, "attempt 2 after a timeout")
    assert watch.silent_seconds(DYNAMODB) == 11
    watch.answer(DYNAMODB)
    clock.advance(1)
    assert [stall.seconds for stall in watch.stalls()] == [1]
