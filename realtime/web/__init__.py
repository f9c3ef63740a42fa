"""The page of `emoview serve`: plain HTML, JS and CSS, shipped as package data, no CDN."""
