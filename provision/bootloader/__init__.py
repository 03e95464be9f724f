"""Boot loader configuration in a target root: kernel command-line edits.

Ignition's ``kernelArguments`` semantics: every ``shouldExist`` argument is
appended where it is missing, every ``shouldNotExist`` argument is removed;
both are compared as whole arguments (``quiet`` does not match ``quiet=1``).

- :mod:`.cmdline` splitting, joining and editing argument lists (pure)
- :mod:`.bls`     Boot Loader Specification entries (loader/entries/*.conf)
- :mod:`.grub`    GRUB: /etc/default/grub and the generated grub.cfg
- :mod:`.helper`  an image-provided command that does the editing itself
- :mod:`.edit`    which of them a target uses; the edit as a plan, then applied
"""
