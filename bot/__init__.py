"""tier0's assistant and its front ends (console chat, Slack)."""
