"""The README's training example runs as printed and learns."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_starts_with_the_two_setup_commands():
    text = README.read_text()
    block = re.search(r"```bash\n(.*?)```", text, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert len(commands) == 2
    assert "pyconv train" in commands[0] and "pytest" in commands[1]
    assert text.index("```bash") < text.index("```python")


def test_readme_training_example_reaches_high_accuracy():
    code = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    accuracy = float(out.stdout.split("test accuracy:")[1])
    assert accuracy >= 0.95, out.stdout
