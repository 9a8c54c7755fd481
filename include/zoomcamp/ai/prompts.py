"""The course's prompts and messages for flows 10 and 11 (one place for each text)."""

QUESTION = ("Which features were released in Kestra 1.1? "
            "Please list at least 5 major features with brief descriptions.")

# Flow 10's lesson: without context the model guesses.
NO_CONTEXT_CAVEAT = ("Note: this answer comes from the model alone, without Kestra's documentation: it is likely "
                     "vague or wrong about Kestra 1.1 (a release newer than what the model learned). "
                     "Compare it with 11_chat_with_rag's answer.")

# Flow 11's system message (the course's ChatCompletion systemMessage).
RAG_SYSTEM_MESSAGE = ("You are a helpful assistant that answers questions about Kestra.\n"
                      "Use the provided documentation to give accurate, specific answers.\n"
                      "If you don't find the information in the context, say so.")
