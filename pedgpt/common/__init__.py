"""The bottom room: constants, error types and small file / RNG / logging helpers every other room may use.

Nothing here imports another pedgpt module.
"""
