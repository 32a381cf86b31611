"""The Unleash client specification, every file in its index.json, one test per case."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from shipyard.domain.flags import FlagState, compile_state
from tests.spec.client_spec import SPEC_VERSION, SpecCase, load_cases

CASES = list(load_cases())


@cache
def _compiled(state_id: int) -> FlagState:
    return compile_state(_STATES[state_id])


_STATES: dict[int, dict[str, Any]] = {id(c.state): c.state for c in CASES}


def test_suite_is_the_pinned_version_and_complete() -> None:
    assert SPEC_VERSION == "6.1.0"
    assert len({c.file for c in CASES}) == 22
    assert len(CASES) == 279


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: SpecCase) -> None:
    state = _compiled(id(case.state))
    if case.is_variant:
        assert state.get_variant(case.toggle, case.context).to_dict() == case.expected
    else:
        assert state.is_enabled(case.toggle, case.context) is case.expected
