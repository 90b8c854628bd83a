"""Policies: scripted, hf (transformers), openai (any OpenAI-compatible server), vllm (in-process).

Each imports its heavy backend only when built; ``build_policy`` picks one from a config.
"""
