"""Module partitioning, on the IR text as llvmlite prints it: the program's own part apart
from library modules every program shares (split_shared: the GEMM driver and its
micro-kernel, whose object code the runner caches by its text), and the own part cut into
modules of similar size compiled in parallel and linked into one engine (split_kernels).
"""

from __future__ import annotations

import itertools
import re

_REFERENCE = re.compile(r'@"([^"]+)"')


def split_shared(text: str) -> tuple[str, list[str]]:
    """Split a module's IR into the program's own part and library modules. Helpers (the
    functions named gc_*, not the steps' kernels k*_*) that read no global variable and
    call only such helpers or declarations (the GEMM drivers, the Winograd convolution's
    parts, their micro-kernel) do not depend on the program, so their object code can be
    shared by every program that emits the same IR (the runner caches it by its text).
    One library module per helper the program calls (exported from it and declared in the
    program's part), holding that helper and internal copies of the helpers it calls: a
    library's text, and so its cached object, does not depend on which other helpers a
    program happens to use."""
    head, definitions = _parse(text)
    globals_ = {name for name, line in head.items() if line.startswith("@")}
    refs = {name: set(_REFERENCE.findall(body)) - {name} for name, body in definitions.items()}
    shared = {name for name in definitions if name.startswith("gc_")}
    changed = True
    while changed:  # drop every function that reads a global or calls a program function
        changed = False
        for name in sorted(shared):
            if refs[name] & globals_ or any(r in definitions and r not in shared
                                            for r in refs[name]):
                shared.discard(name)
                changed = True
    called = {r for name in definitions if name not in shared for r in refs[name]}
    libraries = []
    for root in sorted(shared & called):
        members = _callees(root, shared, refs)
        body = [definitions[root].replace("define internal ", "define ", 1)]
        body += [definitions[name] for name in sorted(members - {root})]
        needed = {r for name in members for r in refs[name] if r not in members}
        libraries.append("\n".join([head[HEADER]] + [head[r] for r in sorted(needed)] + body))
    main = [line for name, line in head.items()]
    main += [_declaration(definitions[name]) for name in sorted(shared & called)]
    main += [body for name, body in definitions.items() if name not in shared]
    return "\n".join(main), libraries


HEADER = "\0header"


def _parse(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(module-level lines by name, the header under HEADER; definitions by name) of IR
    text as llvmlite prints it: one line per global and declaration, `define ... {` to
    a line `}` per function."""
    head: dict[str, str] = {}
    header: list[str] = []
    definitions: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if line.startswith("define "):
            body = [line]
            for more in lines:
                body.append(more)
                if more == "}":
                    break
            definitions[_REFERENCE.search(line).group(1)] = "\n".join(body)
        elif line.startswith(("@", "declare ")):
            head[_REFERENCE.search(line).group(1)] = line
        elif line.strip():
            header.append(line)
    return {HEADER: "\n".join(header), **head}, definitions


def _declaration(definition: str) -> str:
    first = definition.split("\n", 1)[0]
    return "declare " + first.removeprefix("define internal ").removeprefix("define ")


def _callees(root: str, names: set[str], refs: dict[str, set[str]]) -> set[str]:
    """`root` and the functions among `names` it calls, transitively."""
    found, todo = {root}, [root]
    while todo:
        for r in refs[todo.pop()] & names:
            if r not in found:
                found.add(r)
                todo.append(r)
    return found


_KERNEL = re.compile(r"[ks]\d+_")  # kernels k*_* and the schedule's segments s*_*
_MUTABLE = re.compile(r'(@"[^"]+" = )internal ((?:[a-z_]+ )*global )')  # not constant


def split_kernels(text: str, parts: int) -> list[str]:
    """The program's own module (split_shared's first part) as up to `parts` modules of
    similar size, compiled apart (in parallel) and linked into one engine. Kernels (k*_*,
    independent functions; and s*_*, the segments of a long schedule) are dealt out
    biggest first to the smallest part. The first part keeps every other exported function
    (the entry, the accessors) and defines the mutable globals (error slot, barrier,
    profile ticks), which the others declare; each part gets its own copy of the internal
    constants and helpers it uses (so it optimizes as before), and a kernel called from
    another part is exported and declared there."""
    head, definitions = _parse(text)
    kernels = sorted((n for n in definitions if _KERNEL.match(n)),
                     key=lambda n: -len(definitions[n]))
    if parts < 2 or len(kernels) < 2:
        return [text]
    roots = [[n for n, body in definitions.items()
              if not _KERNEL.match(n) and not body.startswith("define internal ")]]
    roots += [[] for _ in range(min(parts, len(kernels)) - 1)]
    sizes = [sum(len(definitions[n]) for n in roots[0])] + [0] * (len(roots) - 1)
    for name in kernels:
        k = sizes.index(min(sizes))
        roots[k].append(name)
        sizes[k] += len(definitions[name])
    refs = {name: set(_REFERENCE.findall(body)) - {name} for name, body in definitions.items()}
    members = [_with_helpers(r, refs, definitions) for r in roots]
    home = {name: k for k, names in enumerate(roots) for name in names}
    called = {r for k, names in enumerate(members) for n in names for r in refs[n]
              if home.get(r, k) != k}
    sites = _call_sites(definitions, called)
    return [_part(k, names, head, definitions, refs, home, sites)
            for k, names in enumerate(members)]


_CALL = re.compile(r'call void @"([^"]+)"\((.*)\)$', re.M)


def _call_sites(definitions: dict[str, str], names: set[str]) -> dict[str, list[list[str]]]:
    """The argument lists of every call of each function in `names` (one scan of every
    body, so splitting costs time linear in the module)."""
    sites: dict[str, list[list[str]]] = {name: [] for name in names}
    for body in definitions.values():
        for m in _CALL.finditer(body):
            if m.group(1) in sites:
                sites[m.group(1)].append(_arguments(m.group(2)))
    return sites


def _with_helpers(roots: list[str], refs: dict[str, set[str]],
                  definitions: dict[str, str]) -> list[str]:
    """`roots` and the internal helpers (neither kernels nor exported) they call,
    transitively."""
    found, todo = list(roots), list(roots)
    while todo:
        for r in sorted(refs[todo.pop()]):
            body = definitions.get(r)
            if (body is not None and r not in found and not _KERNEL.match(r)
                    and body.startswith("define internal ")):
                found.append(r)
                todo.append(r)
    return found


def _part(k: int, names: list[str], head: dict[str, str], definitions: dict[str, str],
          refs: dict[str, set[str]], home: dict[str, int],
          sites: dict[str, list[list[str]]]) -> str:
    used = {r for n in names for r in refs[n]}
    lines = [head[HEADER]]
    for name, line in head.items():
        mutable = _MUTABLE.match(line)
        if name == HEADER or (name not in used and not (k == 0 and mutable)):
            continue
        if mutable:  # defined by the first part, declared by the others
            line = (mutable.expand(r"\1\2") + line[mutable.end():] if k == 0 else
                    mutable.expand(r"\1external \2") + _type_and_align(line[mutable.end():]))
        lines.append(line)
    lines += [_declaration(definitions[r]) for r in sorted(used)
              if r in home and home[r] != k]
    for name in names:
        body = definitions[name]
        if name in sites and home.get(name) == k:
            lines.append(_stub(name, body, sites[name]))
            body = body.replace(f'@"{name}"(', f'@"{name}.body"(', 1)
        lines.append(body)
    return "\n".join(lines)


def _stub(name: str, definition: str, sites: list[list[str]]) -> str:
    """An exported function under a kernel's name that calls the (renamed, internal)
    kernel with the constants every call site (`sites`: their argument lists) passes (a
    serial kernel's thread 0 of 1), so the optimizer specializes the kernel as it does in
    one module; a segment's stub returns what it returns."""
    first = definition.split("\n", 1)[0]
    start = first.index(f'@"{name}"(') + len(name) + 4
    depths = itertools.accumulate((c in "([<{") - (c in ")]>}") for c in first[start:])
    end = start + next(k for k, d in enumerate(depths) if d < 0)
    params = _arguments(first[start:end])
    args = []
    for k, param in enumerate(params):
        constants = {site[k] for site in sites if re.fullmatch(r"i64 -?\d+", site[k])}
        if sites and len(constants) == 1 and all(site[k] in constants for site in sites):
            args.append(constants.pop())
        else:
            args.append(param.split(" ", 1)[0] + " " + param.rsplit(" ", 1)[1])
    returns = first.split(f'@"{name}"(', 1)[0].split()[-1]  # void, or a segment's i32
    call = f'call {returns} @"{name}.body"({", ".join(args)})'
    body = ([f"  {call}", "  ret void"] if returns == "void"
            else [f'  %"result" = {call}', f'  ret {returns} %"result"'])
    return "\n".join([first.replace("define internal ", "define ", 1), "{", "entry:", *body,
                      "}"])


def _arguments(text: str) -> list[str]:
    """The comma-separated items of an argument or parameter list."""
    items, depth, start = [], 0, 0
    for k, char in enumerate(text):
        depth += (char in "([<{") - (char in ")]>}")
        if char == "," and depth == 0:
            items.append(text[start:k].strip())
            start = k + 1
    return items + [text[start:].strip()] if text.strip() else items


def _type_and_align(rest: str) -> str:
    """`TYPE INIT, align N` (a global's definition after `global`) without INIT."""
    depths = itertools.accumulate((c in "[<{") - (c in "]>}") for c in rest)
    end = next((k for k, (c, d) in enumerate(zip(rest, depths)) if c == " " and d == 0),
               len(rest))
    align = re.search(r", align \d+$", rest)
    return rest[:end] + (align.group() if align else "")
