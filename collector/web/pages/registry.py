"""Pages: the registry (admins of a whole tree)."""

from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Request, Response, UploadFile
from fastapi.responses import HTMLResponse

from collector import i18n
from collector.accounts import Accounts, Principal
from collector.errors import RegistryError
from collector.registry import Registry
from collector.web.context import (
    Ctx,
    Db,
    PageUser,
    Reg,
    check_csrf,
    lang_of,
    need,
)
from collector.web.pages.common import download, render

router = APIRouter()


def _registry_admin(me: Principal, registry: Registry) -> None:
    need(me, "admin")
    if registry.units[me.unit].parent is not None:
        raise HTTPException(403, "the registry is shared by the whole tree: only an admin of its top unit edits it")


@router.get("/admin/registry", response_class=HTMLResponse)
def registry_page(
    request: Request, me: PageUser, ctx: Ctx, registry: Reg, error: str = "", done: str = ""
) -> HTMLResponse:
    _registry_admin(me, registry)
    return render(
        ctx, request, "registry.html", me, registry, reg=registry, error=error, done=done, path=ctx.settings.registry
    )


@router.get("/admin/registry.toml")
def registry_download(me: PageUser, db: Db, registry: Reg) -> Response:
    _registry_admin(me, registry)
    Accounts(db).audit(me.username, "export_registry", "registry", "")
    return download(registry.to_toml().encode(), "registry.toml", "toml")


@router.post("/admin/registry")
async def registry_upload(
    request: Request, me: PageUser, ctx: Ctx, db: Db, registry: Reg, file: UploadFile, csrf: Annotated[str, Form()] = ""
) -> Response:
    _registry_admin(me, registry)
    check_csrf(me, csrf)
    import tomllib

    from collector.registry import registry_from_dict, save_registry

    try:
        new = registry_from_dict(tomllib.loads((await file.read()).decode("utf-8-sig")), source=file.filename or "")
        if me.unit not in new.units:
            raise RegistryError(f"the new registry must keep your unit {me.unit}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RegistryError) as exc:
        return registry_page(request, me, ctx, registry, error=str(exc))
    if ctx.settings.registry is not None:
        # `collector serve` loads this file when it starts: it must say the same as the store.
        save_registry(new, ctx.settings.registry)
    db.replace_registry(new)
    ctx.forget_registry()
    Accounts(db).audit(
        me.username,
        "replace_registry",
        "registry",
        f"{len(new.units)} units, {len(new.counters)} counters, {len(new.kiosks)} kiosks",
    )
    said = i18n.text("done_replace_registry", lang_of(request)).format(
        units=len(new.units), counters=len(new.counters), kiosks=len(new.kiosks)
    )
    return registry_page(request, me, ctx, new, done=said)
