"""Text encoders (bi-encoder, cross-encoder, frozen multilingual)."""
