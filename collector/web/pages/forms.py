"""The steps every admin form takes, in one place: the role and the CSRF token, the change itself,
the audit entry, then the page again — with the refusal in the reader's words and what they typed,
or, after a redirect (so a reload does not send the form twice), with what was done."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from collector import i18n
from collector.accounts import Accounts, Principal
from collector.anystore import Store
from collector.web.context import check_csrf, lang_of, need

# What a "done" message may name (the values come back in the address: nothing else is read).
DONE_VALUES = ("name", "n")


@dataclass(frozen=True)
class Done:
    """What a form did: its audit entry, and the words the page says (``done_<say>``, with values)."""

    action: str
    target: str
    detail: str = ""
    say: str = ""  # the text key after "done_"; the action when empty
    values: Mapping[str, str] = field(default_factory=dict)
    changed: bool = True  # False: nothing changed (said so, not audited)


def admin_form(me: Principal, csrf: str) -> None:
    """An admin's form, sent from one of our pages (403 otherwise)."""
    need(me, "admin")
    check_csrf(me, csrf)


def carry_out(
    me: Principal,
    db: Store,
    change: Callable[[], Done],
    back_to: str,
    refused: tuple[type[Exception], ...],
    show: Callable[[str], Response],
) -> Response:
    """Make the change; on one of the ``refused`` errors, ``show`` the form again with it; else
    audit what was done and go ``back_to`` the page, which says it."""
    try:
        done = change()
    except refused as exc:
        return show(str(exc))
    if done.changed:
        Accounts(db).audit(me.username, done.action, done.target, done.detail)
    values = {k: v for k, v in done.values.items() if k in DONE_VALUES}
    return RedirectResponse(f"{back_to}?{urlencode({'done': done.say or done.action, **values})}", status_code=303)


def done_words(request: Request, done: str, known: tuple[str, ...]) -> str:
    """The words for ``?done=`` (one of ``known``), with the values the address carries."""
    if done not in known:
        return ""
    values: dict[str, Any] = {k: request.query_params.get(k, "")[:300] for k in DONE_VALUES}
    return i18n.text(f"done_{done}", lang_of(request)).format_map(values)
