"""Stalls said out loud: who is waiting on which dependency, since when, and what is being retried.

The adapters report every request to a dependency (`begin`, then `retrying` after an attempt that got no
answer, then `ended`, `answered=True` when the dependency answered anything at all, an error included);
the entry points ask `stalls()` what to say and `StallNotices` when to say it (a line when a dependency has
not answered for `notice_seconds`, again every `repeat_seconds`, one when it answers again, and giving up
after the operator's patience). Pure: the clock is given, nothing here does I/O.

A dependency stalls when a request to it is waiting and it has answered nothing since that request began (or
since an earlier one ended without an answer: retries of a request that timed out are one silence): a slow
request among answered ones is not a stall, a paused server is.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from enum import Enum

import attrs

# A stall is said out loud this long after the dependency stopped answering (the issue: within 15 s),
NOTICE_SECONDS = 10.0
# then again this often while it lasts (a log without a terminal still moves at least every 30 s).
REPEAT_SECONDS = 30.0


@attrs.define
class _Request:
    dependency: str
    endpoint: str
    what: str
    since: float
    alive: Callable[[], bool]
    retrying: str | None = None


@attrs.frozen
class Stall:
    """A dependency that has not answered for `seconds`: where it is, and what is waiting on it."""

    dependency: str
    endpoint: str
    seconds: float
    what: str
    retrying: str | None = None
    waiting: int = 1
    since: float = 0.0  # when it stopped answering (the watch's clock)

    def text(self) -> str:
        """`DynamoDB at http://host:8000 has not answered for 12 s: UpdateItem (changing a segment lease), ...`."""
        others = f" (and {self.waiting - 1} more request(s))" if self.waiting > 1 else ""
        retrying = f", retrying ({self.retrying})" if self.retrying else ", still waiting for its answer"
        return (
            f"{self.dependency} at {self.endpoint} has not answered for {self.seconds:.0f} s: "
            f"{self.what}{others}{retrying}"
        )


class StallWatch:
    """Requests in flight to each dependency, the last answer of each, and the timeouts counted."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tokens = itertools.count(1)
        self._requests: dict[int, _Request] = {}
        self._answered_at: dict[str, float] = {}
        # The start of the earliest request since the last answer that ended without one (a timeout, a
        # refused connection): the silence goes on through the pauses between retries.
        self._failed_since: dict[str, float] = {}
        self._failures: dict[str, tuple[int, str]] = {}  # how many ended without an answer since, the last why
        self.timeouts: dict[str, int] = {}
        self.endpoints: dict[str, str] = {}

    def known(self, dependency: str, endpoint: str) -> None:
        """Name a dependency and where it is before any request (so that its counters show as 0)."""
        self.endpoints[dependency] = endpoint
        self.timeouts.setdefault(dependency, 0)

    def begin(self, dependency: str, endpoint: str, what: str, alive: Callable[[], bool] = lambda: True) -> int:
        """A request to `dependency` starts; `alive` says whether whoever waits on it still does (a request
        whose waiter was cancelled never ends, and must not read as a stall). Returns its token."""
        token = next(self._tokens)
        self.known(dependency, endpoint)
        self._requests[token] = _Request(dependency, endpoint, what, self._clock(), alive)
        return token

    def retrying(self, token: int, attempt: int, reason: str) -> None:
        """Attempt `attempt` of the request failed without an answer (`reason`); it is tried again."""
        request = self._requests.get(token)
        if request is not None:
            request.retrying = f"attempt {attempt + 1} after {reason}"

    def timed_out(self, dependency: str) -> None:
        """One attempt of a request to `dependency` timed out."""
        self.timeouts[dependency] = self.timeouts.get(dependency, 0) + 1

    def answer(self, dependency: str) -> None:
        """`dependency` answered something (a result or an error of its own): it is there."""
        self._answered_at[dependency] = self._clock()
        self._failed_since.pop(dependency, None)
        self._failures.pop(dependency, None)

    def ended(self, token: int, answered: bool) -> None:
        """The request is over: with an answer of the dependency, or without one for a reason of the caller's
        (cancelled, an error of its own)."""
        request = self._requests.pop(token, None)
        if request is not None and answered:
            self.answer(request.dependency)

    def failed(self, token: int, reason: str) -> None:
        """The request is over without an answer from the dependency (it timed out, or could not connect:
        `reason`): its silence counts from this request's start through whatever retries it."""
        request = self._requests.pop(token, None)
        if request is None:
            return
        since = self._failed_since.get(request.dependency, request.since)
        self._failed_since[request.dependency] = min(since, request.since)
        count, _ = self._failures.get(request.dependency, (0, ""))
        self._failures[request.dependency] = (count + 1, reason)

    def silent_seconds(self, dependency: str) -> float:
        """How long `dependency` has been silent: since the earliest request after its last answer that waits
        or ended without an answer; 0 when none did."""
        return next((stall.seconds for stall in self.stalls() if stall.dependency == dependency), 0.0)

    def answered_at(self, dependency: str) -> float | None:
        """When `dependency` last answered anything (clock time), None before its first answer."""
        return self._answered_at.get(dependency)

    def now(self) -> float:
        """The watch's clock."""
        return self._clock()

    def stalls(self, at_least: float = 0.0) -> list[Stall]:
        """Each dependency that has not answered for `at_least` seconds or more while a request waits on it:
        its oldest waiting request, and how many wait."""
        now = self._clock()
        for token in [token for token, request in self._requests.items() if not request.alive()]:
            del self._requests[token]
        oldest: dict[str, _Request] = {}
        waiting: dict[str, int] = {}
        for request in self._requests.values():
            waiting[request.dependency] = waiting.get(request.dependency, 0) + 1
            if request.dependency not in oldest or request.since < oldest[request.dependency].since:
                oldest[request.dependency] = request
        found = []
        for dependency, request in oldest.items():
            began = min(request.since, self._failed_since.get(dependency, request.since))
            since = max(began, self._answered_at.get(dependency, began))
            if now - since >= at_least:
                retrying = request.retrying or next(
                    (
                        other.retrying
                        for other in self._requests.values()
                        if other.dependency == dependency and other.retrying
                    ),
                    None,
                )
                if retrying is None and dependency in self._failures:
                    count, reason = self._failures[dependency]
                    retrying = f"attempt {count + 1} after {reason}"
                found.append(
                    Stall(dependency, request.endpoint, now - since, request.what, retrying, waiting[dependency], since)
                )
        return sorted(found, key=lambda stall: stall.dependency)


class NoticeKind(Enum):
    """What `StallNotices` has to say."""

    STALLED = "stalled"
    ANSWERS_AGAIN = "answers_again"
    GIVING_UP = "giving_up"


@attrs.frozen
class Notice:
    kind: NoticeKind
    stall: Stall

    def text(self, patience_seconds: float) -> str:
        """The line to print."""
        stall = self.stall
        if self.kind is NoticeKind.ANSWERS_AGAIN:
            return (
                f"{stall.dependency} at {stall.endpoint} answers again, after {stall.seconds:.0f} s without an answer"
            )
        if self.kind is NoticeKind.GIVING_UP:
            return (
                f"{stall.text()}; giving up after DEPENDENCY_PATIENCE_SECONDS={patience_seconds:g} "
                "(progress so far is recorded: run the command again to carry on)"
            )
        left = f"; giving up in {patience_seconds - stall.seconds:.0f} s" if patience_seconds else ""
        return stall.text() + left


class StallNotices:
    """When to say what about the stalls of a `StallWatch`: ask `due()` every second or so.

    A stall is said when it reaches `notice_seconds`, again every `repeat_seconds`, its end once (when it had
    been said), and `GIVING_UP` once it reaches `patience_seconds` (0: never give up).
    """

    def __init__(
        self,
        watch: StallWatch,
        patience_seconds: float = 0.0,
        notice_seconds: float = NOTICE_SECONDS,
        repeat_seconds: float = REPEAT_SECONDS,
    ) -> None:
        self._watch = watch
        self.patience_seconds = patience_seconds
        self._notice_seconds = min(notice_seconds, patience_seconds) if patience_seconds else notice_seconds
        self._repeat_seconds = repeat_seconds
        self._said: dict[str, Stall] = {}  # the last stall said of each dependency

    def due(self) -> list[Notice]:
        """What is to be said now."""
        notices = []
        current = {stall.dependency: stall for stall in self._watch.stalls(at_least=self._notice_seconds)}
        for dependency, said in list(self._said.items()):
            stall = current.get(dependency)
            if stall is not None and stall.since == said.since:
                continue
            del self._said[dependency]
            answered_at = self._watch.answered_at(dependency)
            if answered_at is not None and answered_at >= said.since:  # not merely no longer waited on
                lasted = attrs.evolve(said, seconds=answered_at - said.since)
                notices.append(Notice(NoticeKind.ANSWERS_AGAIN, lasted))
        for dependency, stall in current.items():
            if self.patience_seconds and stall.seconds >= self.patience_seconds:
                notices.append(Notice(NoticeKind.GIVING_UP, stall))
                self._said[dependency] = stall
                continue
            said_before = self._said.get(dependency)
            if said_before is None or stall.seconds - said_before.seconds >= self._repeat_seconds:
                notices.append(Notice(NoticeKind.STALLED, stall))
                self._said[dependency] = stall
        return notices
