//! The server's VAPID key: the configured one (`[push] vapid_private_key`), else the one made on
//! first start and kept in the data directory, so browsers' subscriptions (bound to its public
//! half) outlive restarts. Every process that signs push messages for one database needs the
//! same key: servers sharing it, and `hark notifier` processes on other machines.

use std::io::Write;
use std::path::Path;

use hark_push::VapidKey;

/// The file in the data directory holding the private key, base64url.
pub const KEY_FILE: &str = "vapid.key";
/// Where a configured key comes from, for errors.
const CONFIGURED: &str = "push.vapid_private_key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// `origin` is the file, or the configuration key, the unusable key came from.
    #[error("{origin}: {source}")]
    Unusable {
        origin: String,
        source: hark_push::PushError,
    },
}

/// `hark serve`'s key: the configured one when set, else `<data_dir>/vapid.key`, made there
/// (readable by the server's user alone) when it does not exist yet.
pub fn load_or_create_key(configured: &str, data_dir: &Path) -> Result<VapidKey, KeyError> {
    if let Some(key) = load_key(configured, data_dir)? {
        return Ok(key);
    }
    let path = data_dir.join(KEY_FILE);
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
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

/// The key of a process that must not make one (`hark notifier`: a key of its own would sign
/// messages no browser subscribed to): the configured one when set, else the one in
/// `<data_dir>/vapid.key`; `None` when there is neither.
pub fn load_key(configured: &str, data_dir: &Path) -> Result<Option<VapidKey>, KeyError> {
    if !configured.is_empty() {
        return parse(configured, CONFIGURED).map(Some);
    }
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(stored) => parse(&stored, &path.display().to_string()).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KeyError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn parse(text: &str, origin: &str) -> Result<VapidKey, KeyError> {
    VapidKey::from_base64url(text).map_err(|source| KeyError::Unusable {
        origin: origin.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_is_made_once_and_read_back() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(load_key("", dir.path()).expect("nothing yet").is_none());
        let made = load_or_create_key("", dir.path()).expect("made");
        let read = load_or_create_key("", dir.path()).expect("read");
        assert_eq!(made.public_key_base64url(), read.public_key_base64url());
        let found = load_key("", dir.path()).expect("read").expect("a key");
        assert_eq!(made.public_key_base64url(), found.public_key_base64url());
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
            load_or_create_key("", dir.path()),
            Err(KeyError::Unusable { .. })
        ));
    }

    #[test]
    fn a_configured_key_wins_over_the_file_and_makes_none() {
        let dir = tempfile::tempdir().expect("temp dir");
        let configured = VapidKey::generate();
        let text = configured.to_base64url();
        let used = load_or_create_key(&text, dir.path()).expect("configured");
        assert_eq!(
            used.public_key_base64url(),
            configured.public_key_base64url()
        );
        assert!(!dir.path().join(KEY_FILE).exists(), "no file is made");

        let stored = load_or_create_key("", dir.path()).expect("made");
        assert_ne!(
            stored.public_key_base64url(),
            configured.public_key_base64url()
        );
        let used = load_key(&text, dir.path())
            .expect("configured")
            .expect("a key");
        assert_eq!(
            used.public_key_base64url(),
            configured.public_key_base64url()
        );

        let Err(KeyError::Unusable { origin, .. }) = load_key("not a key", dir.path()) else {
            panic!("an unusable configured key was taken");
        };
        assert_eq!(origin, CONFIGURED);
    }
}
