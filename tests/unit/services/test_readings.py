"""services.readings: which candidate status shows, and how it counts, from a target's instances."""

from __future__ import annotations

from shipyard.ports.targets import Identity, Instance
from shipyard.services.readings import read

U = Identity.UNVERIFIED


def inst(
    candidate: str, port: int, *, healthy: bool = True, identity: Identity = Identity.VERIFIED
) -> Instance:
    return Instance(candidate, f"127.0.0.1:{port}", port, healthy, identity)


def test_one_of_two_configured_instances_down_reads_2_configured_1_healthy() -> None:
    r = read("rc.1", [inst("rc.1", 1), inst("rc.1", 2, healthy=False)], 2)
    assert (r.candidate, r.running, r.healthy, r.summary) == (
        "rc.1",
        2,
        1,
        "2 configured, 1 healthy",
    )


def test_after_a_lost_instance_it_reads_2_configured_1_healthy_not_1_of_1() -> None:
    r = read("rc.1", [inst("rc.1", 1)], 2)
    assert r.summary == "2 configured, 1 healthy"


def test_a_canary_beside_the_stable_is_listed_apart() -> None:
    r = read("rc.1", [inst("rc.1", 1), inst("rc.2", 2), inst("rc.1", 3)], 2)
    assert (r.candidate, r.others, r.healthy, r.disagrees) == ("rc.1", ("rc.2",), 2, False)


def test_what_answers_wins_over_what_was_recorded() -> None:
    r = read("rc.1", [inst("rc.2", 1), inst("rc.2", 2)], 2)
    assert (r.candidate, r.recorded, r.disagrees, r.verified) == ("rc.2", "rc.1", True, True)


def test_verified_instances_win_over_unverified_ones() -> None:
    r = read("rc.1", [inst("rc.1", 1, identity=U), inst("rc.2", 2)], 1)
    assert (r.candidate, r.identity, r.others) == ("rc.2", Identity.VERIFIED, ("rc.1",))


def test_a_target_that_cannot_tell_reads_unverified() -> None:
    r = read("rc.1", [Instance("rc.1", "production", identity=U)], None)
    assert (r.candidate, r.identity, r.summary) == ("rc.1", U, "1 healthy")


def test_nothing_running_shows_the_record_with_no_identity() -> None:
    r = read("rc.1", [], 2)
    assert (r.candidate, r.identity, r.summary, r.disagrees) == (
        "rc.1",
        None,
        "2 configured, 0 healthy",
        False,
    )
    assert read(None, [], None).summary == "no instance reported"
