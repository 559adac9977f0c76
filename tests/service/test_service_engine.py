"""The engine as the service holds it: one evaluator per date, run by one thread that takes requests in order."""

from __future__ import annotations

import gc
import threading
import time
from datetime import date
from pathlib import Path
from typing import Any

from reirrad.case import load_case
from reirrad.service import engine as engine_module
from reirrad.service.engine import ServiceEngine

ROOT = Path(__file__).resolve().parents[2]
T1 = ROOT / "docs" / "examples" / "t1-chondrosarcoma.yaml"
DAY = date(2026, 11, 30)


def test_evaluations_are_served_in_the_order_they_came(monkeypatch: Any) -> None:
    """Requests waiting for the evaluator are served first come, first served, on the evaluator's own thread (a
    lock lets a waiting request be overtaken again and again: the tail of the latency under load)."""
    service = ServiceEngine()
    evaluator, thread = service._evaluator(DAY)
    case = load_case(T1, as_of=DAY)
    expected = evaluator.evaluate(case)
    running, release = threading.Event(), threading.Event()
    served: list[tuple[str, str]] = []
    evaluate = evaluator.evaluate

    def recording(c: Any, **kw: Any) -> dict[str, Any]:
        if not served:
            running.set()
            release.wait(10)  # the first request holds the evaluator while the others queue
        served.append((c.case_id, threading.current_thread().name))
        return evaluate(c, **kw)

    monkeypatch.setattr(evaluator, "evaluate", recording)
    results: dict[int, dict[str, Any]] = {}

    def request(i: int) -> None:
        results[i] = service.evaluate(case.model_copy(update={"case_id": f"request-{i}"}), DAY)

    callers = []
    for i in range(6):
        t = threading.Thread(target=request, args=(i,))
        t.start()
        callers.append(t)
        if i == 0:
            assert running.wait(10)  # request 0 is off the queue, on the evaluator's thread
        deadline = time.monotonic() + 10
        while thread._work_queue.qsize() < i and time.monotonic() < deadline:  # requests 1..i are queued
            time.sleep(0.001)
    assert thread._work_queue.qsize() == 5
    release.set()
    for t in callers:
        t.join(30)
    assert [cid for cid, _ in served] == [f"request-{i}" for i in range(6)]
    assert {name for _, name in served} == {served[0][1]} and served[0][1].startswith("reirrad-eval")
    for i, result in results.items():
        assert result == {**expected, "case_id": f"request-{i}"}


def test_an_evaluator_dropped_from_the_cache_stops_its_thread(monkeypatch: Any) -> None:
    """A request holding an evaluator that another date has just pushed out of the cache is still served; the
    dropped evaluator's thread ends once nothing holds it."""
    monkeypatch.setattr(engine_module, "MAX_EVALUATORS", 1)
    service = ServiceEngine()
    held = service._evaluator(DAY)
    thread = held[1]
    service._evaluator(date(2026, 1, 2))  # pushes DAY out
    assert DAY not in service._evaluators
    case = load_case(T1, as_of=DAY)
    assert thread.submit(held[0].evaluate, case).result()["case_id"] == case.case_id
    workers = list(thread._threads)
    assert workers
    del held, thread
    gc.collect()
    for worker in workers:
        worker.join(10)
    assert not any(w.is_alive() for w in workers)
