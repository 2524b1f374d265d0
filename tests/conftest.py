import os
import sys

# the helper modules next to the tests (torch_compare.py) import as top-level modules
sys.path.insert(0, os.path.dirname(__file__))
