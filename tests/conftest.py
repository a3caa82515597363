import os

from hypothesis import settings

# CI replays the same examples every run (reproducible verdicts); a
# developer's run draws new ones each time and so keeps exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
