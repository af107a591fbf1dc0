"""Command line interface: `qcdhpc <verb>` parses, calls the library, prints."""
