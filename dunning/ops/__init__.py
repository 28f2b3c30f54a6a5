"""What operators look at and do: queue depths, dead letters, the dunning funnel, endpoints.

Everything here reads (or, for dead letters, moves) what the pipeline already keeps: the
broker's Redis keys exactly as dramatiq lays them out, and the database.
"""
