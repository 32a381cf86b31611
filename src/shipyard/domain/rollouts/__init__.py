"""Rollouts: how a running deployment moves live traffic, as a functional core.

::

    progressing ──(steps done)──────────▶ promoting ──(route 100% new, old retired)──▶ promoted
       │   ▲  │                                                                          ▲
       │   │  └─(analysis failed / abort / errors)─▶ aborting ──(route 100% stable)──▶ rolled_back
       ▼   │                                   ▲                                         │
      paused (pause {}, approval, inconclusive analysis, errors, a human) ──promote --full─┘

``decide(rollout, now, observation)`` runs the policy from the current step as far as it can go
at ``now``: each step type has its own pure handler (``handlers.HANDLERS``), and the decision
carries the next rollout, the records with their evidence, and the effects as data. The engine
saves a decision, then one executor carries out the effects; ``outcomes.finish`` and
``outcomes.fault`` turn what happened (and what failed) into the next decision, so every
rollout has a next action: a due time, a terminal phase, or a named human action.
Time is always passed in.

Modules: ``kinds`` (the StrEnums), ``steps`` (the typed policy), ``model`` (state, records,
effects), ``handlers`` + ``analysis`` (one handler per step type), ``lifecycle`` (start, decide,
routes), ``outcomes`` + ``faults`` (endings and errors), ``commands`` (the human commands).
"""

from shipyard.domain.rollouts.commands import (
    abort,
    check_approver,
    pause,
    promote,
    resumable,
    resume,
)
from shipyard.domain.rollouts.faults import backoff, give_up
from shipyard.domain.rollouts.handlers import HANDLERS, run_steps
from shipyard.domain.rollouts.kinds import (
    ACTIVE_PHASES,
    AWAITED_ACTION,
    DECIDING,
    EffectKind,
    FaultKind,
    OnError,
    PauseReason,
    Phase,
    RecordKind,
    StepKind,
    Strategy,
)
from shipyard.domain.rollouts.lifecycle import (
    decide,
    ending_effects,
    flag_percent,
    proxy_route,
    route_of,
    start,
    wants,
)
from shipyard.domain.rollouts.model import (
    ENGINE,
    AnalysisRun,
    ApplyRoute,
    Decision,
    Drain,
    Effect,
    EffectFailure,
    ErrorStreak,
    Observation,
    Record,
    Retire,
    Rollout,
    RouteIntent,
    Wants,
)
from shipyard.domain.rollouts.outcomes import conclude, fault, finish
from shipyard.domain.rollouts.steps import (
    DEFAULT_ERROR_LIMIT,
    PREVIEW_HEADER,
    STEP_TYPES,
    Analysis,
    Approval,
    Mirror,
    Pause,
    PolicySpec,
    Segment,
    SegmentRule,
    SetWeight,
    Step,
    StepSpec,
)

__all__ = [
    "ACTIVE_PHASES",
    "AWAITED_ACTION",
    "DECIDING",
    "DEFAULT_ERROR_LIMIT",
    "ENGINE",
    "HANDLERS",
    "PREVIEW_HEADER",
    "STEP_TYPES",
    "Analysis",
    "AnalysisRun",
    "ApplyRoute",
    "Approval",
    "Decision",
    "Drain",
    "Effect",
    "EffectFailure",
    "EffectKind",
    "ErrorStreak",
    "FaultKind",
    "Mirror",
    "Observation",
    "OnError",
    "Pause",
    "PauseReason",
    "Phase",
    "PolicySpec",
    "Record",
    "RecordKind",
    "Retire",
    "Rollout",
    "RouteIntent",
    "Segment",
    "SegmentRule",
    "SetWeight",
    "Step",
    "StepKind",
    "StepSpec",
    "Strategy",
    "Wants",
    "abort",
    "backoff",
    "check_approver",
    "conclude",
    "decide",
    "ending_effects",
    "fault",
    "finish",
    "flag_percent",
    "give_up",
    "pause",
    "promote",
    "proxy_route",
    "resumable",
    "resume",
    "route_of",
    "run_steps",
    "start",
    "wants",
]
