"""The ``autumn`` command: pricing as code with ``atmn``'s verbs (init, env, push, pull, reset).

Targets the sandbox key in ``AUTUMN_SECRET_KEY`` (``--prod``: the live key in
``AUTUMN_PROD_SECRET_KEY``) at ``AUTUMN_URL`` (``--local``: a reference server on localhost:8080),
taken from the environment or from ``./.env`` (where ``atmn login`` saves them), or ``--secret-key`` /
``--url``. Off a terminal, or with ``--headless``, nothing is asked: a command that needs a
confirmation fails unless ``--yes`` is given. Exit codes are atmn's: 0 success, 1 any error
(network, auth, validation, or confirmation required).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn

import click
import typer
from rich.console import Console
from rich.markup import escape

from autumn_cli import catalog, source
from autumn_sdk import Autumn
from autumn_sdk.config import DEFAULT_CONFIG_FILE, ConfigError, Feature, Plan, PricingConfig, load_config
from autumn_sdk.errors import AutumnError

CLOUD_URL = "https://api.useautumn.com"
LOCAL_URL = "http://localhost:8080"

app = typer.Typer(
    name="autumn",
    help="Pricing as code for Autumn: keep features and plans in autumn_config.py and sync them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ProdOpt = Annotated[bool, typer.Option("--prod", "-p", help="Target production (AUTUMN_PROD_SECRET_KEY).")]
LocalOpt = Annotated[bool, typer.Option("--local", "-l", help=f"Use the server at {LOCAL_URL}.")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help=f"Path to the config file (default {DEFAULT_CONFIG_FILE})."),
]
HeadlessOpt = Annotated[bool, typer.Option("--headless", help="Never prompt (CI and agents).")]
UrlOpt = Annotated[str | None, typer.Option("--url", help="Server URL (default AUTUMN_URL, then cloud).")]
KeyOpt = Annotated[
    str | None, typer.Option("--secret-key", help="Secret key (default from the environment).")
]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")]


class Failed(Exception):
    """A user-facing failure: printed, exit code 1."""


@dataclass
class Session:
    prod: bool
    local: bool
    config: Path
    headless: bool
    url: str | None
    secret_key: str | None

    def __post_init__(self) -> None:
        self.headless = self.headless or not (sys.stdin.isatty() and sys.stdout.isatty())
        self.console = Console(
            no_color=self.headless, highlight=False, soft_wrap=True, force_terminal=not self.headless or None
        )

    def setting(self, name: str) -> str | None:
        """An environment variable, else the same name in ./.env (where `atmn login` saves keys)."""
        if os.environ.get(name):
            return os.environ[name]
        from dotenv import dotenv_values

        return dotenv_values(".env").get(name) if Path(".env").is_file() else None

    @property
    def key(self) -> str:
        env_name = "AUTUMN_PROD_SECRET_KEY" if self.prod else "AUTUMN_SECRET_KEY"
        key = self.secret_key or self.setting(env_name)
        if not key:
            raise Failed(f"no secret key: set {env_name} or pass --secret-key")
        if not self.prod and key.startswith("am_sk_live_"):
            raise Failed("this is a live key: pass --prod to target production")
        return key

    @property
    def server_url(self) -> str:
        return self.url or (LOCAL_URL if self.local else self.setting("AUTUMN_URL") or CLOUD_URL)

    def client(self) -> Autumn:
        return Autumn(self.key, server_url=self.server_url, fail_open=False, max_retries=2)

    @contextmanager
    def working(self, message: str) -> Iterator[None]:
        if self.headless:
            yield
        else:
            with self.console.status(message):
                yield

    def confirm(self, question: str, yes: bool) -> None:
        if yes:
            return
        if self.headless:
            raise Failed("confirmation required: pass --yes")
        if not typer.confirm(question, default=False):
            raise Failed("cancelled")

    def print(self, text: str = "") -> None:
        self.console.print(text)


@dataclass
class Globals:
    """Flags given before the command (``autumn --local push``), as atmn's global flags."""

    prod: bool = False
    local: bool = False
    config: Path | None = None
    headless: bool = False
    url: str | None = None
    secret_key: str | None = None


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(version("autumn-kit"))
        raise typer.Exit()


@app.callback()
def _globals(
    ctx: typer.Context,
    prod: ProdOpt = False,
    local: LocalOpt = False,
    config: ConfigOpt = None,
    headless: HeadlessOpt = False,
    url: UrlOpt = None,
    secret_key: KeyOpt = None,
    version: Annotated[
        bool, typer.Option("--version", "-V", help="Show the version.", callback=_version, is_eager=True)
    ] = False,
) -> None:
    """Pricing as code for Autumn: keep features and plans in autumn_config.py and sync them."""
    ctx.obj = Globals(prod, local, config, headless, url, secret_key)


def _session(
    ctx: typer.Context,
    prod: bool,
    local: bool,
    config: Path | None,
    headless: bool,
    url: str | None,
    secret_key: str | None,
) -> Session:
    g = ctx.obj if isinstance(ctx.obj, Globals) else Globals()
    return Session(
        prod or g.prod,
        local or g.local,
        config or g.config or Path(DEFAULT_CONFIG_FILE),
        headless or g.headless,
        url or g.url,
        secret_key or g.secret_key,
    )


def _fail(session: Session | None, message: str) -> NoReturn:
    console = session.console if session else Console(stderr=True, no_color=True)
    console.print(
        f"[red]Error:[/red] {escape(message)}" if session and not session.headless else f"Error: {message}"
    )
    raise typer.Exit(1)


@contextmanager
def _errors(session: Session) -> Iterator[None]:
    try:
        yield
    except Failed as exc:
        _fail(session, str(exc))
    except ConfigError as exc:
        _fail(session, str(exc))
    except AutumnError as exc:
        _fail(session, f"the server refused: {exc}")


def _mask(key: str) -> str:
    return key[:11] + "…" + key[-4:] if len(key) > 16 else "…"


STARTER = '''"""Pricing for this project: features and plans (`autumn push` / `autumn pull`)."""

from autumn_sdk.config import feature, item, plan

# Features

messages = feature("messages", name="Messages", type="metered", consumable=True)

# Plans

free = plan(
    "free",
    name="Free",
    auto_enable=True,
    items=[item(messages, included=100, reset={"interval": "month"})],
)

pro = plan(
    "pro",
    name="Pro",
    price={"amount": 20, "interval": "month"},
    items=[
        item(
            messages,
            included=10_000,
            reset={"interval": "month"},
            price={"amount": 1, "billing_units": 1000, "interval": "month", "billing_method": "usage_based"},
        ),
    ],
)
'''


@app.command()
def init(
    ctx: typer.Context,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing config.")] = False,
    prod: ProdOpt = False,
    local: LocalOpt = False,
    config: ConfigOpt = None,
    headless: HeadlessOpt = False,
    url: UrlOpt = None,
    secret_key: KeyOpt = None,
) -> None:
    """Create autumn_config.py, pulling what the server already has (a starter config otherwise)."""
    s = _session(ctx, prod, local, config, headless, url, secret_key)
    with _errors(s):
        if s.config.exists() and not overwrite:
            raise Failed(f"{s.config} already exists (use `autumn pull` to update it)")
        with s.working("Reading the server's catalogue..."), s.client() as client:
            remote = catalog.fetch_remote(client)
        features = [f for f in remote.features if not f.archived]
        plans = [p for p in remote.plans if not p.archived]
        if features or plans:
            s.config.write_text(source.write_config(features, catalog.remote_entries(remote, plans)))
            s.print(f"Wrote {s.config} with {len(features)} features and {len(plans)} plans from the server.")
        else:
            s.config.write_text(STARTER)
            s.print(f"Wrote a starter {s.config} (the server has no features or plans yet).")
        s.print("Next: edit it, then `autumn push` to preview and `autumn push --yes` to apply.")


@app.command()
def env(
    ctx: typer.Context,
    prod: ProdOpt = False,
    local: LocalOpt = False,
    config: ConfigOpt = None,
    headless: HeadlessOpt = False,
    url: UrlOpt = None,
    secret_key: KeyOpt = None,
) -> None:
    """Show the organization, environment and key in use."""
    s = _session(ctx, prod, local, config, headless, url, secret_key)
    with _errors(s):
        key = s.key
        with s.client() as client:
            org = catalog.call_extra(client, catalog.ORGANIZATIONS_CURRENT)
            if org is None:
                client.features.list()  # the key works even where the server cannot name the org
        environment = "live" if key.startswith("am_sk_live_") else "sandbox"
        s.print(f"Server:       {s.server_url}")
        if org is not None:
            s.print(f"Organization: {org.get('name')} ({org.get('id')})")
            environment = str(org.get("env", environment))
        else:
            s.print("Organization: (this server does not say)")
        s.print(f"Environment:  {environment}")
        s.print(f"Key:          {_mask(key)}")


def _print_plan(s: Session, plan: catalog.ChangePlan) -> None:
    if plan.empty:
        s.print("No changes: the server matches the config.")
        return
    marks = {"create": "+", "update": "~", "version": "+", "archive": "-"}
    words = {"create": "create", "update": "update", "version": "new version of", "archive": "archive"}
    colors = {"create": "green", "update": "yellow", "version": "green", "archive": "red"}
    s.print("Changes:")
    for c in plan.changes:
        head = f"{marks[c.action]} {words[c.action]} {c.kind} {c.id}"
        s.print(
            f"  [{colors[c.action]}]{escape(head)}[/{colors[c.action]}]" if not s.headless else "  " + head
        )
        for line in c.details:
            s.print("      " + escape(line))
        if c.customer_note:
            s.print("      ! " + escape(c.customer_note))
    counts = {a: sum(1 for c in plan.changes if c.action == a) for a in marks}
    versions = counts["version"]
    summary = f"{counts['create']} to create, {counts['update']} to update, {counts['archive']} to archive"
    if versions:
        summary += f", {versions} new plan version{'s' if versions != 1 else ''}"
    s.print(summary)


def _write_back(
    s: Session, config: PricingConfig, after: dict[str, Feature | Plan], numbers: dict[str, int | None]
) -> None:
    """Record the server's internal ids, and the version each plan entry is, in the config (as atmn
    records internalId and versionSlug)."""
    assert config.path is not None
    kwargs: dict[str, dict[str, Any]] = {}
    objects: list[Feature | Plan] = [*config.features, *config.plans]
    for obj in objects:
        key = f"feature:{obj.feature_id}" if isinstance(obj, Feature) else f"plan:{obj.plan_id}"
        server = after.get(key)
        var = config.variables.get(obj.key if isinstance(obj, Plan) else key)
        if server is None or var is None:
            continue
        values: dict[str, Any] = {}
        if server.internal_id and server.internal_id != obj.internal_id:
            values["internal_id"] = server.internal_id
        number = numbers.get(obj.key) if isinstance(obj, Plan) else None
        if isinstance(obj, Plan) and number is not None and number != obj.version:
            values["version"] = number
        if values:
            kwargs[var] = values
    if not kwargs:
        return
    text = config.path.read_text()
    edit = source.Edit({}, set(), kwargs, [], [], {})
    config.path.write_text(source.edit_config(text, edit))
    s.print(f"Recorded the server's ids in {config.path}.")


@app.command()
def push(
    ctx: typer.Context,
    yes: YesOpt = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-d", help="Preview only, even with --yes.")] = False,
    prod: ProdOpt = False,
    local: LocalOpt = False,
    config: ConfigOpt = None,
    headless: HeadlessOpt = False,
    url: UrlOpt = None,
    secret_key: KeyOpt = None,
) -> None:
    """Compare the config with the server and show the changes; apply them with --yes."""
    s = _session(ctx, prod, local, config, headless, url, secret_key)
    with _errors(s):
        cfg = load_config(s.config)
        with s.client() as client:
            with s.working("Comparing with the server..."):
                plan = catalog.plan_changes(client, cfg)
            _print_plan(s, plan)
            if dry_run:
                s.print("Dry run: nothing applied.")
                return
            if plan.empty:
                after: dict[str, Feature | Plan] = {
                    **{f"feature:{f.feature_id}": f for f in plan.remote.features},
                    **{f"plan:{p.plan_id}": p for p in plan.remote.plans},
                }
                _write_back(s, cfg, after, plan.numbers)
                return
            s.confirm("Apply these changes?", yes)
            with s.working("Applying..."):
                after = catalog.apply_changes(client, plan)
            s.print("Applied.")
            _write_back(s, cfg, after, plan.numbers)


def _variable(cfg: PricingConfig, key: str) -> str:
    var = cfg.variables.get(key)
    if var is None:
        raise Failed(
            f"{key.replace(':', ' ')} is not bound to a top-level name, so it cannot be updated in place: "
            "give it one (name = plan(...)) or use `autumn pull --overwrite --yes`"
        )
    return var


def _pull_edit(cfg: PricingConfig, remote: catalog.Remote) -> tuple[source.Edit, list[str]]:
    """What an in-place pull changes in the file, and a line per change for the person."""
    notes: list[str] = []
    taken = set(cfg.variables.values())
    edit = source.Edit({}, set(), {}, [], [], {})
    remote_features = {f.feature_id: f for f in remote.features}
    local_features = {f.feature_id: f for f in cfg.features}

    fpairs, f_unmatched = catalog.match_objects(cfg.features, remote.features, lambda f: f.feature_id)
    for f in cfg.features:
        key = f"feature:{f.feature_id}"
        r = fpairs.get(f.feature_id)
        if r is None:
            edit.remove.add(_variable(cfg, key))
            notes.append(f"- feature {f.feature_id} (not on the server)")
            continue
        if key in cfg.variables:
            edit.feature_vars[r.feature_id] = cfg.variables[key]
        if catalog.canonical_feature(f) != catalog.canonical_feature(r) or f.feature_id != r.feature_id:
            edit.replace[_variable(cfg, key)] = r
            notes.append(f"~ feature {r.feature_id}")
        elif r.internal_id and r.internal_id != f.internal_id and key in cfg.variables:
            edit.set_kwargs[cfg.variables[key]] = {"internal_id": r.internal_id}
    for r in f_unmatched:
        if not r.archived:
            var = source.variable_name(r.feature_id, taken, "feature")
            edit.feature_vars[r.feature_id] = var
            edit.add_features.append((var, r))
            notes.append(f"+ feature {r.feature_id}")

    ppairs, p_unmatched = catalog.match_objects(cfg.active_plans, remote.plans, lambda p: p.plan_id)
    for a in cfg.active_plans:
        entries = cfg.versions(a.plan_id)
        rp = ppairs.get(a.plan_id)
        if rp is None:
            for e in entries:
                edit.remove.add(_variable(cfg, e.key))
            notes.append(f"- plan {a.plan_id} (not on the server)")
            continue
        server = remote.versions_of(rp)
        resolved = catalog.resolve_versions(entries, server)
        by_number = {n: e for e in entries if (n := resolved[e.key]) is not None}
        for e in entries:
            if resolved[e.key] is None:
                edit.remove.add(_variable(cfg, e.key))
                notes.append(f"- plan {e.plan_id} version {e.version_slug} (not on the server)")
        several = len(server) > 1
        for v in server:
            n = int(v.version or 1)
            mapped = by_number.get(n)
            slug = (
                mapped.version_slug
                if mapped is not None and mapped.version_slug
                else f"v{n}"
                if several
                else None
            )
            target = v.model_copy(
                update={
                    "version_slug": slug,
                    "active": (v is server[-1]) if several else None,
                    "internal_id": rp.internal_id,
                }
            )
            label = f"plan {v.plan_id}" + (f" version {slug}" if several else "")
            if mapped is None:
                free_name = v is server[-1] and v.plan_id not in taken
                name = v.plan_id if free_name or not several else f"{v.plan_id}_{slug}"
                edit.add_plans.append((source.variable_name(name, taken, "plan"), target))
                notes.append(f"+ {label}")
                continue
            before = catalog.canonical_plan(mapped, local_features)
            after = catalog.canonical_plan(target, remote_features)
            if not target.is_active:
                before.pop("archived")
                after.pop("archived")
            if before != after or mapped.plan_id != v.plan_id:
                edit.replace[_variable(cfg, mapped.key)] = target
                notes.append(f"~ {label}")
                continue
            values: dict[str, Any] = {}
            for name in ("version_slug", "active", "version", "internal_id"):
                wanted = getattr(target, name)
                if wanted is not None and wanted != getattr(mapped, name):
                    values[name] = wanted
            if values and mapped.key in cfg.variables:
                edit.set_kwargs[cfg.variables[mapped.key]] = values
                if "active" in values:
                    what = "the one new customers get" if values["active"] else "kept, not active"
                    notes.append(f"~ {label}: {what}")
    for rp in p_unmatched:
        if not rp.archived:
            for entry in catalog.remote_entries(remote, [rp]):
                base = entry.plan_id if entry.is_active else f"{entry.plan_id}_{entry.version_slug}"
                edit.add_plans.append((source.variable_name(base, taken, "plan"), entry))
            notes.append(f"+ plan {rp.plan_id}")
    return edit, notes


@app.command()
def pull(
    ctx: typer.Context,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Rewrite the config instead of updating it (needs --yes).")
    ] = False,
    yes: YesOpt = False,
    prod: ProdOpt = False,
    local: LocalOpt = False,
    config: ConfigOpt = None,
    headless: HeadlessOpt = False,
    url: UrlOpt = None,
    secret_key: KeyOpt = None,
) -> None:
    """Write the server's features and plans into the config, in place (formatting kept)."""
    s = _session(ctx, prod, local, config, headless, url, secret_key)
    with _errors(s):
        with s.working("Reading the server's catalogue..."), s.client() as client:
            remote = catalog.fetch_remote(client)
        live_features = [f for f in remote.features if not f.archived]
        live_plans = [p for p in remote.plans if not p.archived]
        if overwrite or not s.config.exists():
            if overwrite and s.config.exists():
                s.confirm(f"Rewrite {s.config} from the server?", yes)
            s.config.write_text(
                source.write_config(live_features, catalog.remote_entries(remote, live_plans))
            )
            s.print(f"Wrote {s.config}: {len(live_features)} features, {len(live_plans)} plans.")
            return
        cfg = load_config(s.config)
        edit, notes = _pull_edit(cfg, remote)
        text = s.config.read_text()
        new_text = source.edit_config(text, edit)
        if new_text == text:
            s.print(f"{s.config} is up to date.")
            return
        s.config.write_text(new_text)
        for line in notes:
            s.print("  " + escape(line))
        s.print(f"Updated {s.config}.")


@app.command()
def reset(
    ctx: typer.Context,
    yes: YesOpt = False,
    prod: ProdOpt = False,
    local: LocalOpt = False,
    config: ConfigOpt = None,
    headless: HeadlessOpt = False,
    url: UrlOpt = None,
    secret_key: KeyOpt = None,
) -> None:
    """Delete every plan, feature and customer of the sandbox (never production)."""
    s = _session(ctx, prod, local, config, headless, url, secret_key)
    with _errors(s):
        key = s.key
        if prod or key.startswith("am_sk_live_"):
            raise Failed("reset is refused on a live key: it only empties a sandbox")
        with s.client() as client:
            org = catalog.call_extra(client, catalog.ORGANIZATIONS_CURRENT)
            if org is not None and org.get("env") == "live":
                raise Failed("reset is refused on a live key: it only empties a sandbox")
            s.confirm("Delete every plan, feature and customer in this sandbox?", yes)
            with s.working("Resetting..."):
                customers, plans, features = catalog.reset_sandbox(client)
        s.print(f"Deleted {customers} customers, {plans} plans and {features} features.")


def main(argv: list[str] | None = None) -> None:
    """Console script entry point; usage errors exit with 1 like every other error (atmn's codes)."""
    try:
        code = app(args=argv, standalone_mode=False)
    except click.exceptions.Exit as exc:
        raise SystemExit(1 if exc.exit_code else 0) from None
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(1) from None
    except click.exceptions.Abort:
        raise SystemExit(1) from None
    raise SystemExit(1 if isinstance(code, int) and code else 0)
