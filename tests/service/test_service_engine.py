"""The engine as the service holds it: one evaluator per date; evaluations take turns on the event loop, first come
first served, one per turn of the loop."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Callable, Coroutine
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import pytest
from reirrad.case import load_case
from reirrad.service import engine as engine_module
from reirrad.service.engine import ServiceEngine

ROOT = Path(__file__).resolve().parents[2]
T1 = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"
DAY = date(2026, 11, 30)
T = TypeVar("T")


def _run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run on a thread of its own: the browser tests leave an event loop running on the main thread."""
    out: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            out.append(asyncio.run(main()))
        except BaseException as exc:  # handed back to the test
            failure.append(exc)

    thread = threading.Thread(target=target, name="loop")
    thread.start()
    thread.join(60)
    if failure:
        raise failure[0]
    return out[0]


@pytest.fixture(scope="module")
def service() -> ServiceEngine:
    return ServiceEngine()


def _recording(service: ServiceEngine, monkeypatch: Any, log: list[Any], mark: Any = None) -> None:
    evaluate_now = service._evaluate_now

    def recording(case: Any, as_of: Any) -> dict[str, Any]:
        log.append((case.case_id, threading.current_thread().name, mark() if mark else None))
        return evaluate_now(case, as_of)

    monkeypatch.setattr(service, "_evaluate_now", recording)


def test_turns_are_served_in_order_one_per_turn_of_the_loop(service: ServiceEngine, monkeypatch: Any) -> None:
    """Six requests that arrive together are evaluated in the order they came, and the loop runs between two
    evaluations (it sends the answer just computed and reads new requests before the next one starts)."""
    case = load_case(T1, as_of=DAY)
    expected = service._evaluate_now(case, DAY)
    ticks = [0]
    served: list[Any] = []
    _recording(service, monkeypatch, served, mark=lambda: ticks[0])

    async def ticker() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0)

    async def run() -> list[dict[str, Any]]:
        tick = asyncio.create_task(ticker())
        try:
            return await asyncio.gather(
                *(
                    service.evaluate_in_turn(case.model_copy(update={"case_id": f"request-{i}"}), DAY)
                    for i in range(6)
                )
            )
        finally:
            tick.cancel()

    results = _run(run)
    assert [cid for cid, _, _ in served] == [f"request-{i}" for i in range(6)]
    assert {name for _, name, _ in served} == {"loop"}  # on the loop's own thread
    marks = [m for _, _, m in served]
    assert all(b > a for a, b in itertools.pairwise(marks)), marks  # the loop ran between turns
    for i, result in enumerate(results):
        assert result == {**expected, "case_id": f"request-{i}"}


def test_a_request_still_waiting_after_its_time_is_not_evaluated(
    service: ServiceEngine, monkeypatch: Any
) -> None:
    case = load_case(T1, as_of=DAY)
    served: list[Any] = []
    _recording(service, monkeypatch, served)

    async def run() -> None:
        await service.evaluate_in_turn(case, DAY)  # the loop's turn exists
        turn = service._turns[asyncio.get_running_loop()]
        await turn.acquire()  # another request is being evaluated
        try:
            with pytest.raises(TimeoutError):
                await service.evaluate_in_turn(case, DAY, timeout_s=0.05)
        finally:
            turn.release()
        with pytest.raises(TimeoutError):  # its time was already over when its turn came
            await service.evaluate_in_turn(case, DAY, timeout_s=0.0)
        assert len(served) == 1
        await service.evaluate_in_turn(case, DAY, timeout_s=5.0)  # and the turns go on
        assert len(served) == 2

    _run(run)


def test_a_worker_thread_evaluates_on_the_loop_and_a_script_directly(
    service: ServiceEngine, monkeypatch: Any
) -> None:
    """The CDS service calls the synchronous ``evaluate`` from a worker thread: its evaluation takes a turn on the
    loop with the others, never runs beside one on the same engine session. With no loop, it runs in place."""
    case = load_case(T1, as_of=DAY)
    served: list[Any] = []
    _recording(service, monkeypatch, served)

    async def run() -> tuple[dict[str, Any], str]:
        loop_thread = threading.current_thread().name
        result = await anyio.to_thread.run_sync(service.evaluate, case, DAY)
        return result, loop_thread

    result, loop_thread = _run(run)
    assert served[-1][1] == loop_thread
    assert result["case_id"] == case.case_id
    worker: list[str] = []
    thread = threading.Thread(
        target=lambda: worker.append(service.evaluate(case, DAY)["case_id"]), name="script"
    )
    thread.start()
    thread.join(30)
    assert worker == [case.case_id]
    assert served[-1][1] == "script"


def test_an_evaluator_pushed_out_by_other_dates_is_compiled_again(monkeypatch: Any) -> None:
    monkeypatch.setattr(engine_module, "MAX_EVALUATORS", 1)
    service = ServiceEngine()
    first = service._evaluator(DAY)
    assert service._evaluator(DAY) is first
    service._evaluator(date(2026, 1, 2))  # pushes DAY out
    assert list(service._evaluators) == [date(2026, 1, 2)]
    again = service._evaluator(DAY)
    assert again is not first
    case = load_case(T1, as_of=DAY)
    assert again.evaluate(case) == first.evaluate(case)
