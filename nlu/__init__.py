"""Understanding what a message means: intents, confidences, fallback."""
