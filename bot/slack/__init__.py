"""The Slack front end: a bolt app over the same assistant as the console."""
