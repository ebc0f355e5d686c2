"""Replication: partitions, followers, acknowledgements and long polls."""
