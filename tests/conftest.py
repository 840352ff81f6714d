"""Settings for the unit tests."""

import torch

# The networks in the unit tests are tiny: a second thread only adds
# synchronisation, and on a busy 2-core machine it can slow a test tenfold.
torch.set_num_threads(1)
