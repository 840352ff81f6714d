"""Settings for the unit tests."""

from whydeep import set_threads

# The networks in the unit tests are tiny: a second thread only adds
# synchronisation, and on a busy 2-core machine it can slow a test tenfold.
set_threads(1)
