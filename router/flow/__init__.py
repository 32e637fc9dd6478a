"""The request flow: validate, decode and fit images, detect, prompt, classify, assemble the answer."""
