"""Load MJCF from a string or a file, turning MuJoCo's parse errors into ones that show the line."""

import re
from pathlib import Path
from xml.etree import ElementTree

import mujoco


class MJCFError(ValueError):
    """The MJCF could not be compiled; the message names the line and what to fix."""


_LINE_PATTERNS = (r"line\s*(?:number)?\s*[=:]?\s*(\d+)", r"Line number=(\d+)")


def _line_number(message: str) -> int | None:
    for pattern in _LINE_PATTERNS:
        match = re.search(pattern, message, flags=re.IGNORECASE)
        if match:
            return int(match.group(1))
    return None


def load_mj_model(xml: str | Path, assets: dict[str, bytes] | None = None) -> mujoco.MjModel:
    """Compile MJCF given as XML text or as a path to a `.xml` file.

    Raises:
      MJCFError: the XML is malformed or MuJoCo rejects it; the message quotes the offending line.
      FileNotFoundError: `xml` looks like a path but no such file exists.
    """
    is_path = isinstance(xml, Path) or (isinstance(xml, str) and not xml.lstrip().startswith("<"))
    source = str(xml) if is_path else "<MJCF string>"
    if is_path:
        path = Path(xml)
        if not path.is_file():
            raise FileNotFoundError(f"MJCF file not found: {path}. Pass an existing .xml path or "
                                    "the XML text itself.")
        text = path.read_text()
    else:
        text = str(xml)
    try:  # expat pinpoints malformed XML (e.g. the mismatched closing tag) better than MuJoCo
        ElementTree.fromstring(text)
    except ElementTree.ParseError as err:
        line = err.position[0]
        lines = text.splitlines()
        quoted = f"\n  line {line}: {lines[line - 1].strip()}" if 1 <= line <= len(lines) else ""
        raise MJCFError(f"malformed XML in {source}: {err}{quoted}\n"
                        "Fix the XML syntax at that line and load again.") from None
    try:
        if is_path:
            return mujoco.MjModel.from_xml_path(str(xml), assets or {})
        return mujoco.MjModel.from_xml_string(text, assets or {})
    except ValueError as err:
        message = str(err).strip()
        line = _line_number(message)
        where = ""
        if line is not None:
            lines = text.splitlines()
            if 1 <= line <= len(lines):
                where = f"\n  line {line}: {lines[line - 1].strip()}"
        raise MJCFError(f"invalid MJCF in {source}: {message}{where}\n"
                        "Fix the element or attribute named above and load again.") from None
