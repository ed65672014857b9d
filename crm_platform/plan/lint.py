"""Checks of the plan's own YAML, before anything is built from it.

Works on the parsed documents (plain dicts and lists), so a broken plan is described, never half
loaded. Every problem is reported, each as `FILE: PATH: what is wrong`, PATH naming the exact place
(e.g. `versions[1] (2026-06-1).properties.duration`).
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

from crm_platform.plan.formats import (
    DEFAULT_MAX_LENGTH, FIRST_VERSION, MAX_LENGTH_TYPES, NAME_RE, NUMERIC_TYPES, PROPERTY_TYPES, RESERVED_NAMES,
    VERSION_RE, version_key,
)

PLAN_KEYS = ("name", "description", "sources", "consent_purposes", "context")
PLAN_REQUIRED = ("name", "sources", "consent_purposes")
EVENT_KEYS = ("event_type", "description", "owner", "identity", "sources", "consent_purpose",
              "retention_days", "versions")
VERSION_KEYS = ("version", "description", "properties", "migrations")
PROPERTY_KEYS = ("type", "required", "pii", "values", "max_length", "minimum", "maximum", "description")
# lead: lead_id required; lead_or_user: one of lead_id, user_id; none: about no person, neither required.
IDENTITIES = ("lead", "lead_or_user", "none")
MIGRATION_OPS = ("rename", "default", "drop")


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, file: str, path: str, message: str) -> None:
        self.items.append(f"{file}: {path}: {message}" if path else f"{file}: {message}")


def kind(value: Any) -> str:
    """YAML-ish name of a parsed value, for messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _suggest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_keys(p: Problems, file: str, path: str, doc: dict, allowed: tuple[str, ...],
               required: tuple[str, ...] = ()) -> None:
    for key in doc:
        if key not in allowed:
            p.add(file, path, f"unknown key {str(key)!r}{_suggest(str(key), allowed)} "
                              f"(allowed: {', '.join(allowed)})")
    for key in required:
        if key not in doc:
            p.add(file, path, f"missing required key '{key}'")


def _check_text(p: Problems, file: str, path: str, doc: dict, key: str) -> None:
    if key in doc and (not isinstance(doc[key], str) or not doc[key].strip()):
        p.add(file, _join(path, key), f"must be a non-empty string, got {kind(doc[key])}")


# --- property specs --------------------------------------------------------------------------------

def lint_property(p: Problems, file: str, path: str, spec: Any) -> bool:
    """Check one property spec; True if it is sound enough to compare with other versions."""
    if not isinstance(spec, dict):
        p.add(file, path, f"must be a mapping of settings (type, required, ...), got {kind(spec)}")
        return False
    before = len(p.items)
    check_keys(p, file, path, spec, PROPERTY_KEYS, ("type",))
    ptype = spec.get("type")
    if "type" in spec and ptype not in PROPERTY_TYPES:
        shown = repr(ptype) if isinstance(ptype, str) else kind(ptype)
        p.add(file, path, f"unknown type {shown} (expected one of: {', '.join(PROPERTY_TYPES)})")
    for flag in ("required", "pii"):
        if flag in spec and not isinstance(spec[flag], bool):
            p.add(file, path, f"{flag} must be true or false, got {kind(spec[flag])}")
    if "description" in spec and not isinstance(spec["description"], str):
        p.add(file, path, f"description must be a string, got {kind(spec['description'])}")

    values = spec.get("values")
    if ptype == "enum":
        if "values" not in spec:
            p.add(file, path, "enum without values (add values: [...])")
        elif not isinstance(values, list) or not values:
            p.add(file, path, f"enum values must be a non-empty list, got {kind(values)}")
        else:
            for i, v in enumerate(values):
                if not isinstance(v, str) or not v:
                    p.add(file, path, f"enum values[{i}] must be a non-empty string, got {kind(v)} "
                                      "(quote it: YAML reads 1, 2.5, true as non-strings)")
            dupes = sorted({v for v in values if isinstance(v, str) and values.count(v) > 1})
            if dupes:
                p.add(file, path, f"enum values repeat: {', '.join(dupes)}")
    elif "values" in spec and isinstance(ptype, str) and ptype in PROPERTY_TYPES:
        p.add(file, path, f"values apply only to type enum, not {ptype}")

    if "max_length" in spec:
        ml = spec["max_length"]
        if not _is_int(ml) or ml < 1:
            p.add(file, path, f"max_length must be a positive integer, got {kind(ml)}")
        elif ptype in PROPERTY_TYPES and ptype not in MAX_LENGTH_TYPES:
            p.add(file, path, f"max_length applies only to types {', '.join(sorted(MAX_LENGTH_TYPES))}, not {ptype}")
    for bound in ("minimum", "maximum"):
        if bound in spec:
            if not _is_number(spec[bound]):
                p.add(file, path, f"{bound} must be a number, got {kind(spec[bound])}")
            elif ptype in PROPERTY_TYPES and ptype not in NUMERIC_TYPES:
                p.add(file, path, f"{bound} applies only to types integer, number, not {ptype}")
    mn, mx = spec.get("minimum"), spec.get("maximum")
    if _is_number(mn) and _is_number(mx) and mn > mx:
        p.add(file, path, f"minimum {mn} is greater than maximum {mx}")
    return len(p.items) == before


@dataclass
class PropertyMap:
    specs: dict[str, Any]  # every validly named property -> its spec as written
    sound: set[str]        # names whose spec passed every check (safe to compare)


def lint_property_map(p: Problems, file: str, path: str, props: Any, what: str,
                      reserved: tuple[str, ...] = ()) -> PropertyMap:
    """Check a mapping of name -> spec."""
    result = PropertyMap({}, set())
    if props is None:
        props = {}
    if not isinstance(props, dict):
        p.add(file, path, f"must be a mapping of {what} name -> settings, got {kind(props)}")
        return result
    by_fold: dict[str, str] = {}
    reserved_fold = {r.casefold(): r for r in reserved}
    for name, spec in props.items():
        ppath = _join(path, str(name))
        if not isinstance(name, str) or not NAME_RE.match(name):
            p.add(file, ppath, f"invalid {what} name {name!r} (letters, digits and _, not starting with a digit)")
            continue
        result.specs[name] = spec
        clash = reserved_fold.get(name.casefold())
        if clash is not None:
            p.add(file, ppath, f"{what} '{name}' conflicts with the envelope field '{clash}' (choose another name)")
        other = by_fold.get(name.casefold())
        if other is not None:
            p.add(file, ppath, f"{what} '{name}' conflicts with '{other}': names must differ other than by case")
        by_fold.setdefault(name.casefold(), name)
        if lint_property(p, file, ppath, spec) and clash is None and other is None:
            result.sound.add(name)
    return result


# --- plan.yaml ---------------------------------------------------------------------------------------

@dataclass
class Registries:
    sources: set[str]
    consent_purposes: set[str]
    known: bool = True  # False when plan.yaml could not be read: names cannot be checked


def lint_plan_doc(p: Problems, doc: Any, file: str = "plan.yaml") -> Registries:
    reg = Registries(set(), set())
    if not isinstance(doc, dict):
        p.add(file, "", f"must be a mapping (name, sources, consent_purposes, context), got {kind(doc)}")
        return reg
    check_keys(p, file, "", doc, PLAN_KEYS, PLAN_REQUIRED)
    _check_text(p, file, "", doc, "name")
    _check_text(p, file, "", doc, "description")
    for key, target in (("sources", reg.sources), ("consent_purposes", reg.consent_purposes)):
        registry = doc.get(key)
        if key not in doc:
            continue
        if not isinstance(registry, dict) or not registry:
            p.add(file, key, f"must be a non-empty mapping of name -> description, got {kind(registry)}")
            continue
        for name, text in registry.items():
            if not isinstance(name, str) or not NAME_RE.match(name):
                p.add(file, _join(key, str(name)), f"invalid name {name!r} (letters, digits and _)")
                continue
            if not isinstance(text, str) or not text.strip():
                p.add(file, _join(key, name), f"needs a description, got {kind(text)}")
            target.add(name)
    if "sources" in doc and isinstance(doc["sources"], dict) and "crm" not in doc["sources"]:
        p.add(file, "sources", "'crm' must be declared: every event type allows it (CONTRACT §5)")
    lint_property_map(p, file, "context", doc.get("context"), "context field")
    return reg


# --- events/<event_type>.yaml ---------------------------------------------------------------------

def _version_path(i: int, item: Any) -> str:
    label = item.get("version") if isinstance(item, dict) else None
    return f"versions[{i}] ({label})" if isinstance(label, str) else f"versions[{i}]"


def lint_event_doc(p: Problems, doc: Any, file: str, stem: str, reg: Registries) -> None:
    if not isinstance(doc, dict):
        p.add(file, "", f"must be a mapping (event_type, description, owner, ...), got {kind(doc)}")
        return
    check_keys(p, file, "", doc, EVENT_KEYS, EVENT_KEYS)
    et = doc.get("event_type")
    if "event_type" in doc:
        if not isinstance(et, str) or not NAME_RE.match(et):
            p.add(file, "event_type", f"invalid event type name {et!r} (letters, digits and _)")
        elif et != stem:
            p.add(file, "event_type", f"'{et}' does not match the file name '{stem}.yaml'")
    for key in ("description", "owner"):
        _check_text(p, file, "", doc, key)
    if "identity" in doc and doc["identity"] not in IDENTITIES:
        p.add(file, "identity", f"must be one of: {', '.join(IDENTITIES)}, got {kind(doc['identity'])}")
    if "sources" in doc:
        sources = doc["sources"]
        if not isinstance(sources, list):
            p.add(file, "sources", f"must be a list of source names, got {kind(sources)}")
        else:
            seen: set[str] = set()
            for i, s in enumerate(sources):
                if not isinstance(s, str):
                    p.add(file, f"sources[{i}]", f"must be a source name, got {kind(s)}")
                elif reg.known and s not in reg.sources:
                    p.add(file, f"sources[{i}]", f"unknown source '{s}'{_suggest(s, sorted(reg.sources))} "
                                                 f"(declared in plan.yaml: {', '.join(sorted(reg.sources))})")
                elif s in seen:
                    p.add(file, f"sources[{i}]", f"source '{s}' is listed twice")
                if isinstance(s, str):
                    seen.add(s)
    if "consent_purpose" in doc:
        cp = doc["consent_purpose"]
        if not isinstance(cp, str) or (reg.known and cp not in reg.consent_purposes):
            shown = f"'{cp}'" if isinstance(cp, str) else kind(cp)
            p.add(file, "consent_purpose", f"unknown consent purpose {shown} "
                                           f"(declared in plan.yaml: {', '.join(sorted(reg.consent_purposes))})")
    if "retention_days" in doc:
        rd = doc["retention_days"]
        if not _is_int(rd) or rd < 1:
            p.add(file, "retention_days", f"must be a positive integer (days), got {kind(rd)}")
    if "versions" in doc:
        _lint_versions(p, file, doc["versions"])


def _lint_versions(p: Problems, file: str, versions: Any) -> None:
    if not isinstance(versions, list) or not versions:
        p.add(file, "versions", f"must be a non-empty list of versions (oldest first), got {kind(versions)}")
        return
    names: list[str | None] = []
    props: list[PropertyMap | None] = []  # per version, None if it has no usable properties
    for i, item in enumerate(versions):
        vpath = _version_path(i, item)
        if not isinstance(item, dict):
            p.add(file, vpath, f"must be a mapping (version, properties, migrations), got {kind(item)}")
            names.append(None)
            props.append(None)
            continue
        check_keys(p, file, vpath, item, VERSION_KEYS, ("version", "properties"))
        name = item.get("version")
        if "version" in item and (not isinstance(name, str) or not VERSION_RE.match(name)):
            p.add(file, vpath, f"bad version format {name!r} (expected YYYY-MM-N, e.g. {FIRST_VERSION})")
            name = None
        names.append(name)
        if "properties" in item:
            props.append(lint_property_map(p, file, f"{vpath}.properties", item["properties"], "property",
                                           RESERVED_NAMES))
        else:
            props.append(None)

    first = versions[0]
    if names[0] is not None and names[0] != FIRST_VERSION:
        p.add(file, _version_path(0, first), f"the first version must be {FIRST_VERSION}, got '{names[0]}'")
    if isinstance(first, dict) and first.get("migrations"):
        p.add(file, f"{_version_path(0, first)}.migrations", "the first version has nothing to migrate from")

    seen: dict[str, int] = {}
    last_ok: str | None = None
    for i, name in enumerate(names):
        if name is None:
            continue
        if name in seen:
            p.add(file, _version_path(i, versions[i]), f"duplicate version {name} (also versions[{seen[name]}])")
            continue
        seen[name] = i
        if last_ok is not None and version_key(name) < version_key(last_ok):
            p.add(file, _version_path(i, versions[i]),
                  f"versions out of order: {name} comes after {last_ok} (list versions oldest first)")
        else:
            last_ok = name

    for i in range(1, len(versions)):
        item = versions[i]
        if not isinstance(item, dict):
            continue
        vpath = _version_path(i, item)
        prev_name = names[i - 1] or f"versions[{i - 1}]"
        if "migrations" not in item:
            p.add(file, vpath, f"missing migrations from {prev_name} (write migrations: [] if none are needed)")
            continue
        _lint_migrations(p, file, vpath, item["migrations"], prev_name, props[i - 1], props[i],
                         names[i] or f"versions[{i}]")


def _lint_migrations(p: Problems, file: str, vpath: str, migrations: Any, prev_name: str,
                     prev_map: PropertyMap | None, cur_map: PropertyMap | None, cur_name: str) -> None:
    mpath = f"{vpath}.migrations"
    if not isinstance(migrations, list):
        p.add(file, mpath, f"must be a list of rename / default / drop steps, got {kind(migrations)}")
        return
    prev = prev_map.specs if prev_map is not None else None
    cur = cur_map.specs if cur_map is not None else None
    renames: dict[str, str] = {}  # from -> to
    defaults: dict[str, int] = {}  # property -> step index
    moved: dict[str, int] = {}  # property renamed away or dropped -> step index

    def move(name: str, j: int) -> None:
        if name in moved:
            p.add(file, f"{mpath}[{j}]", f"'{name}' is already renamed or dropped by migrations[{moved[name]}]")
        moved.setdefault(name, j)

    for j, step in enumerate(migrations):
        spath = f"{mpath}[{j}]"
        if not isinstance(step, dict) or len(step) != 1:
            p.add(file, spath, "must be exactly one of: rename: {from, to}, default: {property, value}, drop: name")
            continue
        (op, arg), = step.items()
        if op not in MIGRATION_OPS:
            p.add(file, spath, f"unknown migration {op!r}{_suggest(str(op), MIGRATION_OPS)} "
                               f"(expected one of: {', '.join(MIGRATION_OPS)})")
            continue
        if op == "rename":
            if not isinstance(arg, dict):
                p.add(file, f"{spath}.rename", f"must be a mapping {{from, to}}, got {kind(arg)}")
                continue
            check_keys(p, file, f"{spath}.rename", arg, ("from", "to"), ("from", "to"))
            src, dst = arg.get("from"), arg.get("to")
            if not isinstance(src, str) or not isinstance(dst, str):
                continue
            move(src, j)
            if prev is not None and src not in prev:
                p.add(file, f"{spath}.rename.from", f"no property '{src}' in {prev_name}")
            if cur is not None and src in cur:
                p.add(file, f"{spath}.rename.from", f"'{src}' is renamed but still a property of {cur_name}")
            if cur is not None and dst not in cur:
                p.add(file, f"{spath}.rename.to", f"no property '{dst}' in {cur_name}")
            if prev is not None and dst in prev:
                p.add(file, f"{spath}.rename.to", f"'{dst}' already exists in {prev_name}: a rename cannot target it")
            if dst in renames.values():
                p.add(file, f"{spath}.rename.to", f"two properties are renamed to '{dst}'")
            renames[src] = dst
        elif op == "default":
            if not isinstance(arg, dict):
                p.add(file, f"{spath}.default", f"must be a mapping {{property, value}}, got {kind(arg)}")
                continue
            check_keys(p, file, f"{spath}.default", arg, ("property", "value"), ("property", "value"))
            prop = arg.get("property")
            if not isinstance(prop, str):
                continue
            if prop in defaults:
                p.add(file, spath, f"'{prop}' already has a default in migrations[{defaults[prop]}]")
            defaults.setdefault(prop, j)
            if cur is not None and prop not in cur:
                p.add(file, f"{spath}.default.property", f"no property '{prop}' in {cur_name}")
            elif "value" in arg:
                if arg["value"] is None:
                    p.add(file, f"{spath}.default.value", "a default cannot be null (null counts as absent)")
                elif cur_map is not None and prop in cur_map.sound:
                    problems = _default_problems(prop, cur[prop], arg["value"])  # type: ignore[index]
                    if problems:
                        p.add(file, f"{spath}.default.value",
                              f"{arg['value']!r} is not a valid value of '{prop}' ({'; '.join(problems)})")
        else:
            if not isinstance(arg, str):
                p.add(file, f"{spath}.drop", f"must be a property name, got {kind(arg)}")
                continue
            move(arg, j)
            if prev is not None and arg not in prev:
                p.add(file, f"{spath}.drop", f"no property '{arg}' in {prev_name}")
            if cur is not None and arg in cur:
                p.add(file, f"{spath}.drop", f"'{arg}' is dropped but still a property of {cur_name}")

    if prev_map is None or cur_map is None or prev is None or cur is None:
        return
    targets = {dst: src for src, dst in renames.items()}
    for name in prev:
        if name not in cur and name not in moved:
            p.add(file, vpath, f"property '{name}' of {prev_name} is gone and neither dropped nor renamed "
                               f"(add a migration: drop: {name}, or rename: {{from: {name}, to: ...}})")
    for name, spec in cur.items():
        if name not in cur_map.sound:
            continue
        ppath = f"{vpath}.properties.{name}"
        required = spec.get("required") is True
        old_name = targets.get(name, name if name in prev else None)
        if old_name is not None and old_name in prev_map.sound:
            _compare(p, file, ppath, prev_name, old_name, prev[old_name], spec)
        if old_name is None:
            if required and name not in defaults:
                p.add(file, ppath, f"required property absent from {prev_name}, with neither a rename nor a default "
                                   f"(add a migration: default: {{property: {name}, value: ...}})")
        elif (required and old_name in prev_map.sound and prev[old_name].get("required") is not True
              and name not in defaults):
            p.add(file, ppath, f"becomes required but is optional in {prev_name}; events without it cannot be "
                               f"upgraded (add a migration: default: {{property: {name}, value: ...}})")


def _compare(p: Problems, file: str, path: str, prev_name: str, old_name: str, old: dict, new: dict) -> None:
    """Old events keep their values through an upgrade: the new spec must still accept them."""
    was = f"'{old_name}' in {prev_name}"
    if old.get("type") != new.get("type"):
        p.add(file, path, f"type changes from {old.get('type')} ({was}) to {new.get('type')}: migrations do not "
                          "convert values, add a property with a new name instead")
        return
    if new.get("type") == "enum" and isinstance(old.get("values"), list) and isinstance(new.get("values"), list):
        removed = [v for v in old["values"] if v not in new["values"]]
        if removed:
            p.add(file, path, f"enum values removed since {prev_name}: {', '.join(map(str, removed))} "
                              "(events of the older version could not be upgraded)")
    old_ml = old.get("max_length", DEFAULT_MAX_LENGTH)
    new_ml = new.get("max_length", DEFAULT_MAX_LENGTH)
    if _is_int(old_ml) and _is_int(new_ml) and new_ml < old_ml:
        p.add(file, path, f"max_length shrinks from {old_ml} ({was}) to {new_ml}")
    for bound, tighter in (("minimum", lambda a, b: a > b), ("maximum", lambda a, b: a < b)):
        ov, nv = old.get(bound), new.get(bound)
        if _is_number(nv) and (ov is None or (_is_number(ov) and tighter(nv, ov))):
            p.add(file, path, f"{bound} tightens from {ov if ov is not None else 'none'} ({was}) to {nv}")


def _default_problems(name: str, spec: dict, value: Any) -> list[str]:
    """Reasons a migration default would fail its property (the validation rules themselves)."""
    from crm_platform.plan.model import PropertySpec
    from crm_platform.plan.rules import describe, failing_codes, property_rule

    if spec.get("type") not in PROPERTY_TYPES:
        return []
    pspec = PropertySpec(
        name=name, type=spec["type"], values=tuple(spec["values"]) if isinstance(spec.get("values"), list) else None,
        max_length=spec.get("max_length"), minimum=spec.get("minimum"), maximum=spec.get("maximum"),
    )
    rule = dataclasses.replace(property_rule("attributes", pspec), column=name)
    return [describe(code, rule, value).split(": ", 1)[1] for code in failing_codes(rule, value)]
