//! The server's VAPID key: made on first start and kept in the data directory, so browsers'
//! subscriptions (bound to its public half) outlive restarts.

use std::io::Write;
use std::path::Path;

use hark_push::VapidKey;

/// The file in the data directory holding the private key, base64url.
pub const KEY_FILE: &str = "vapid.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Unusable {
        path: String,
        source: hark_push::PushError,
    },
}

/// Reads `<data_dir>/vapid.key`, or makes a new key and writes it there (readable by the
/// server's user alone).
pub fn load_or_create_key(data_dir: &Path) -> Result<VapidKey, KeyError> {
    let path = data_dir.join(KEY_FILE);
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(stored) => {
            return VapidKey::from_base64url(&stored).map_err(|source| KeyError::Unusable {
                path: path.display().to_string(),
                source,
            });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let key = VapidKey::generate();
    let mut options = std::fs::OpenOptions::new();
    // `create_new`: two servers starting at once must not each write their own key.
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&path).map_err(io)?;
    file.write_all(key.to_base64url().as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        let made = load_or_create_key(dir.path()).expect("made");
        let read = load_or_create_key(dir.path()).expect("read");
        assert_eq!(made.public_key_base64url(), read.public_key_base64url());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .expect("file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(KEY_FILE), "not a key").expect("write");
        assert!(matches!(
            load_or_create_key(dir.path()),
            Err(KeyError::Unusable { .. })
        ));
    }
}
