"""The delivery engine, free of Ray: what happens to a message from the moment it is accepted
until it is done or dead-lettered. The dispatcher actor (:mod:`raypipe.runtime.dispatcher`)
runs it on Ray; tests run it in-process on a :class:`FakeClock`."""

from raypipe.engine.attempt import AttemptError, Executor
from raypipe.engine.clock import Clock, FakeClock, SystemClock
from raypipe.engine.engine import DeliveryEngine
from raypipe.engine.hooks import Hooks
from raypipe.engine.journal import Journal, MemoryJournal, make_journal
from raypipe.engine.outcomes import Outcomes

__all__ = [
    "AttemptError",
    "Clock",
    "DeliveryEngine",
    "Executor",
    "FakeClock",
    "Hooks",
    "Journal",
    "MemoryJournal",
    "Outcomes",
    "SystemClock",
    "make_journal",
]
