"""Rank and world helpers, and FSDP2 (build on meta, shard per decoder layer, load shard by shard)."""
