#!/usr/bin/env python3
"""Checks that every program the project's scripts and tests call is provided by a line of
scripts/packages.txt, so that the list the install step works from cannot drift from what the
steps use.

    scripts/check-packages.py        (scripts/test.sh runs it after the install step)

It reads the shell scripts under scripts/, Deploy/ and Benchmarks/ and takes the word in command
position of each simple command (after ;, |, &&, (, $(, then, do, exec, sudo, ...), and it reads the
Swift sources and tests for absolute program paths (/usr/bin/X, /bin/X). Builtins, functions the
script defines, variables and the project's own files are not programs of a package. A name that
packages.txt does not provide is printed with the file and line that calls it, and the exit
status is 1.
"""
import pathlib
import re
import shlex
import sys

root = pathlib.Path(__file__).resolve().parent.parent

SHELL_WORDS = {
    # keywords
    "if", "then", "else", "elif", "fi", "for", "in", "do", "done", "while", "until", "case",
    "esac", "function", "select", "time", "!", "{", "}", "[[", "]]",
    # builtins
    ".", ":", "[", "alias", "bg", "break", "builtin", "cd", "command", "continue", "declare",
    "echo", "eval", "exec", "exit", "export", "false", "fg", "getopts", "hash", "jobs", "kill",
    "let", "local", "mapfile", "popd", "printf", "pushd", "pwd", "read", "readarray",
    "readonly", "return", "set", "shift", "shopt", "source", "test", "trap", "true", "type",
    "typeset", "ulimit", "umask", "unalias", "unset", "wait",
}
# Words after which the next word is again in command position.
PREFIXES = {"then", "do", "else", "elif", "if", "while", "until", "!", "time", "exec", "command",
            "sudo", "$sudo", "{", "nohup", "xargs"}
# Not from Debian: the Swift toolchain, which the README asks for on the PATH.
TOOLCHAIN = {"swift", "swiftc"}
SEPARATORS = {";", "|", "||", "&&", "&", "(", ")", ";;", "|&", "\n"}


def provided():
    names = set()
    for line in (root / "scripts/packages.txt").read_text().splitlines():
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        for check in fields[2:]:
            if ":" in check:
                continue
            names.add(check)
            names.add(check.rsplit("/", 1)[-1])
    return names


def strip_heredocs(text):
    """Drops the bodies of here-documents (their lines are data, not commands)."""
    out, terminator = [], None
    for line in text.splitlines():
        if terminator is not None:
            if line.strip() == terminator:
                terminator = None
            out.append("")
            continue
        match = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", line)
        if match:
            terminator = match.group(1)
        out.append(line)
    return out


def blank_expansions(line, queue, number):
    """Replaces $( ... ), ${ ... } and $(( ... )) by a plain word, queueing the bodies of command
    substitutions as lines of their own."""
    out, i = [], 0
    while i < len(line):
        if line.startswith(("$(", "${"), i):
            opener = line[i + 1]
            closer = ")" if opener == "(" else "}"
            depth, j = 0, i + 1
            while j < len(line):
                if line[j] == opener:
                    depth += 1
                elif line[j] == closer:
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            body = line[i + 2:j]
            if opener == "(" and not body.startswith("("):
                queue.append((number, body))
            out.append("$_")
            i = j + 1
        else:
            out.append(line[i])
            i += 1
    return "".join(out)


def defined_functions(source):
    """The shell functions `source` defines, and those of the project files it sources."""
    functions = set(re.findall(r"^\s*(?:function\s+)?([\w-]+)\s*\(\)", source, re.M))
    for sourced in re.findall(r"^\s*(?:source|\.)\s+([\w./-]+)\s*$", source, re.M):
        path = root / sourced
        if path.is_file():
            functions |= defined_functions(path.read_text())
    return functions


def commands(source):
    """Yields (name, line number) for each word in command position."""
    lines = strip_heredocs(source)
    functions = defined_functions(source)
    # Join continued lines, keeping the first line's number.
    logical, number, pending = [], 0, ""
    for index, line in enumerate(lines, 1):
        if not pending:
            number = index
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append((number, pending + line))
        pending = ""
    # case: "word" after `case`, "pattern" from `in` or `;;` up to the pattern's `)`.
    case_state = None
    queue = list(logical)
    while queue:
        number, line = queue.pop(0)
        line = blank_expansions(line, queue, number)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:  # an open quote: a line of a multi-line string
            continue
        expect, in_array, previous = True, False, None
        for token in tokens:
            if previous == "case":
                case_state = "word"
            elif case_state == "word" and token == "in":
                case_state = "pattern"
                previous = token
                continue
            if token == ";;":
                case_state = "pattern"
            if token == "esac":
                case_state = None
            if case_state == "pattern":
                if token == ")":
                    case_state = "body"
                    expect = True
                previous = token
                continue
            if in_array:
                in_array = token != ")"
            elif token == "(" and previous is not None and previous.endswith("="):
                in_array = True
            elif token in SEPARATORS:
                expect = True
            elif expect:
                if re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=", token):
                    pass  # an assignment before the command
                else:
                    if token not in PREFIXES:
                        expect = False
                    if is_program(token, functions):
                        yield token, number
            previous = token


def is_program(word, functions):
    if word in SHELL_WORDS or word in TOOLCHAIN or word in functions:
        return False
    if word.startswith(("$", "-", "'", '"', "{", "}", ">", "<")) or word[0].isdigit():
        return False
    if "/" in word and not word.startswith("/"):
        return False  # the project's own files (scripts/..., .build/..., "$root"/...)
    return re.match(r"^[/A-Za-z0-9_.+-]+$", word) is not None


def shell_scripts():
    for folder in ("scripts", "Deploy", "Benchmarks", ".ci"):
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and (path.suffix == ".sh" or path.read_bytes()[:32].startswith(b"#!/usr/bin/env bash")):
                yield path


def main():
    names = provided()
    unknown = []
    for path in shell_scripts():
        for name, number in commands(path.read_text()):
            if name not in names and name.rsplit("/", 1)[-1] not in names:
                unknown.append(f"{path.relative_to(root)}:{number}: {name}")
    for folder in ("Sources", "Tests"):
        for path in sorted((root / folder).rglob("*.swift")):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                for program in re.findall(r'"((?:/usr)?/s?bin/[\w.+-]+)"', line):
                    if program.rsplit("/", 1)[-1] not in names:
                        unknown.append(f"{path.relative_to(root)}:{number}: {program}")
    if unknown:
        print("check-packages: these programs are called, but no line of scripts/packages.txt provides them:", file=sys.stderr)
        for entry in unknown:
            print(f"  {entry}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
