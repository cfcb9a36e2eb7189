"""The evaluation's sharding names; they live in :mod:`audiodetic.sharding`, shared with collection runs."""

from audiodetic.sharding import DistributedEnv, Shard, device_for, distributed_env, effective_shard, wait_for_files

__all__ = ["DistributedEnv", "Shard", "device_for", "distributed_env", "effective_shard", "wait_for_files"]
