"""Knowledge articles, their chunks, and the search over them."""
