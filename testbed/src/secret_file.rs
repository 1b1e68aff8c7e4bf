//! Files that carry secrets (an agent configuration with inline passwords, a
//! users file, a dialer configuration with a token): the programs refuse them
//! unless only their owner can read them, so rigs write them that way.

use std::path::Path;

/// Writes `text` to `path`, mode 0600, replacing any file there (a shared one included): the
/// programs' own [`splitdial_tls::secret_file::replace`], so rigs write secrets as they do.
pub fn write_private(path: impl AsRef<Path>, text: impl AsRef<[u8]>) -> std::io::Result<()> {
    splitdial_tls::secret_file::replace(path.as_ref(), text.as_ref()).map_err(|e| {
        let kind = e.io_kind().unwrap_or(std::io::ErrorKind::Other);
        std::io::Error::new(kind, e.to_string())
    })
}
