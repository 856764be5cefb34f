"""Stage 1, the program: a `.pte` read without the runtime (instruction tables, method
signatures and constant values, planned memory, LLM recognition) and ETRecord module paths."""
