"""Extract: paging loops, checkpoints and request pacing against the networks' APIs."""
