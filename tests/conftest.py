import sys
from pathlib import Path

# test helpers (scripted models, tiny real models) live beside the tests
sys.path.insert(0, str(Path(__file__).parent))
