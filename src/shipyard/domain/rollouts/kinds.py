"""The closed sets of the rollout core: phases, step kinds, record kinds, pause reasons, faults."""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    PROGRESSING = "progressing"
    PAUSED = "paused"
    PROMOTING = "promoting"
    ABORTING = "aborting"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"


ACTIVE_PHASES = frozenset({Phase.PROGRESSING, Phase.PAUSED, Phase.PROMOTING, Phase.ABORTING})
DECIDING = frozenset({Phase.PROMOTING, Phase.ABORTING})


class StepKind(StrEnum):
    """The names policies use in ``shipyard.yaml`` and the stored state."""

    SET_WEIGHT = "set_weight"
    PAUSE = "pause"
    ANALYSIS = "analysis"
    APPROVAL = "approval"
    SEGMENT = "segment"
    MIRROR = "mirror"


class Strategy(StrEnum):
    CANARY = "canary"
    BLUE_GREEN = "blue_green"


class RecordKind(StrEnum):
    """What a decision record says happened (``rollout.<kind>`` is its event)."""

    STARTED = "started"
    WEIGHT = "weight"
    SEGMENT = "segment"
    MIRROR = "mirror"
    PAUSED = "paused"
    WAITING = "waiting"
    APPROVED = "approved"
    RESUMED = "resumed"
    ANALYSIS = "analysis"
    SKIPPED = "skipped"
    PROMOTING = "promoting"
    PROMOTED = "promoted"
    ABORTING = "aborting"
    ROLLED_BACK = "rolled_back"
    RETIRED = "retired"
    DRY_RUN = "dry_run"
    ERROR = "error"  # a tick or a measurement that could not be done; one record per streak
    RECOVERED = "recovered"  # the first good tick after an error streak


class PauseReason(StrEnum):
    """Why a paused rollout waits, so faces can name the human action it waits for."""

    NONE = ""
    HUMAN = "human"  # `rollout pause`: `rollout resume` continues
    PAUSE_STEP = "pause_step"  # a pause {} step: `rollout promote` goes on
    APPROVAL = "approval"  # an approval step: an approver's `rollout promote`
    INCONCLUSIVE = "inconclusive"  # analysis could not decide: resume re-runs, promote skips
    ERRORS = "errors"  # consecutive errors with `on_error: pause`: fix, then resume


# what a human does to get a rollout paused for each reason going again
AWAITED_ACTION: dict[PauseReason, str] = {
    PauseReason.NONE: "",
    PauseReason.HUMAN: "rollout resume",
    PauseReason.PAUSE_STEP: "rollout promote",
    PauseReason.APPROVAL: "rollout promote (by an approver)",
    PauseReason.INCONCLUSIVE: "rollout resume (re-run the analysis) or rollout promote",
    PauseReason.ERRORS: "rollout resume (after fixing the error) or rollout abort",
}


class OnError(StrEnum):
    """What ``consecutive_error_limit`` errors in a row do (Argo Rollouts aborts)."""

    ABORT = "abort"
    PAUSE = "pause"


class FaultKind(StrEnum):
    """Where an error came from, for the evidence and for the random-walk coverage."""

    ROUTER = "router"
    TARGET = "target"
    METRIC = "metric"
    INSTANCE = "instance"  # a version with no running instance to route to
    OTHER = "other"


class EffectKind(StrEnum):
    ROUTE = "route"
    DRAIN = "drain"
    RETIRE = "retire"
