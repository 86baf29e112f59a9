"""Scheduled sends: cron slots in a time zone, each slot sent at most once.

``timeline`` computes slots; ``outcome`` says what one slot run did; ``sending``
turns a slot into a send plan for the pipeline; ``runner`` claims slots and runs them
(once, or for ever); ``listing`` shows what comes next.

A *slot* is one firing of a schedule's cron expression. Its key is the schedule's
name and the slot's local date and time (``daily@2026-03-05T07:00:00``). The key is
claimed in the state database before anything is built or sent, under a file lock,
so a restart, a second instance or an external cron job that fires twice never
sends a slot twice. A slot interrupted mid-send stays ``claimed`` and is resumed
(the delivery ledger skips everyone already mailed).

Time zones and daylight saving
    The cron expression is evaluated on local wall-clock times (croniter on naive
    datetimes), then each wall time is placed on the time line with ``zoneinfo``:
    a time that happens twice (clocks go back) runs once, at its first occurrence;
    a time that does not exist (clocks go forward) runs once, at the first instant
    after the gap, and several such times collapse into one slot. A 07:00 slot stays
    at 07:00 local time all year. (croniter's own time-zone mode runs a repeated time
    twice, hence this.)

Missed slots
    Only the latest due slot of a schedule is ever considered: several missed slots
    never become a burst of sends. It is caught up when it is at most ``grace`` late,
    otherwise recorded as skipped and logged.

No stale, no empty
    "Nothing new" (``NothingToSend``) skips the slot. So does a lead story older than
    the schedule's ``max_age_hours``.
"""
