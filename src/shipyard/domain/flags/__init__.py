"""Feature flags with Unleash semantics: compile a state once, evaluate it in-process, purely.

state = compile_state(client_features_json)
state.is_enabled("checkout.v2", {"userId": "42", "properties": {"plan": "pro"}})
state.get_variant("checkout.v2", ctx).to_dict()
state.evaluate("checkout.v2", ctx)  # -> Evaluation(enabled, variant, reason)
"""

from shipyard.domain.flags.delta import apply_events
from shipyard.domain.flags.evaluator import CompiledFlag, FlagState, compile_state
from shipyard.domain.flags.hashing import PPM, fine_position, normalized_hash
from shipyard.domain.flags.results import (
    DISABLED,
    DISABLED_FEATURE_ON,
    Evaluation,
    Reason,
    Variant,
)
from shipyard.domain.flags.strategies import rollout_ppm

__all__ = [
    "DISABLED",
    "DISABLED_FEATURE_ON",
    "PPM",
    "CompiledFlag",
    "Evaluation",
    "FlagState",
    "Reason",
    "Variant",
    "apply_events",
    "compile_state",
    "fine_position",
    "normalized_hash",
    "rollout_ppm",
]
