"""The shared kernel: the abstract base model, the domain error base class and the embedded-services bootstrap."""
