"""AI with Gemini (course 2.5, walkthrough 4_1): the connection, chat, embeddings, RAG and the failure explainer."""
