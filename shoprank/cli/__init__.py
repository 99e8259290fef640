"""The ``shoprank`` command line."""
