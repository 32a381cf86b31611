"""A person is known by all their emails: commit authors to the users who may not approve them.

Tokens name a user and the emails that user commits as; git gives each author as written and as
the repository's ``.mailmap`` maps them. Emails are compared case-insensitively (so are names, in
the approval rules), so ``Grace Hopper <GRACE@example.com>`` is the user ``grace`` whose token
lists ``grace@example.com``.
"""

from __future__ import annotations

from collections.abc import Iterable

from shipyard.ports.repositories import UnitOfWork


def author_users(uow: UnitOfWork, authors: Iterable[tuple[str, str]]) -> set[str]:
    """Every name an author goes by: as written, as mailmapped, and the users owning the email."""
    by_email = uow.tokens.users_by_email()
    found: set[str] = set()
    for name, email in authors:
        found.update(x for x in (name, email) if x)
        found.update(by_email.get(email.strip().casefold(), ()))
    return found
