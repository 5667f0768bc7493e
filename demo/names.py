"""Names the demo's scenarios share with its model server, in a module that imports
nothing: building ``modelmon``'s command line reads the scenarios, and must not
load numpy, scikit-learn or Flask (tests/unit/core/test_layout.py)."""

MODEL_NAME = "fraud-detector"
