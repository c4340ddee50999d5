//! Delivery: a note sent by its owner to recipients, directly or through a channel, and what a
//! recipient's inbox holds.

use super::{Note, NoteId, Timestamp, UserId};

/// A channel (a delivery job): a named group whose creator manages the members.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    pub name: String,
    pub creator_id: UserId,
    pub creator_email: String,
    pub created_at: Timestamp,
    pub members: Vec<UserId>,
    /// The members' emails, in the order of `members`.
    pub member_emails: Vec<String>,
}

impl Channel {
    /// Whether `user` may see the channel and send to it: its creator or a member.
    pub fn includes(&self, user: UserId) -> bool {
        self.creator_id == user || self.members.contains(&user)
    }

    /// Who a note sent to the channel by `sender` reaches: the creator and the members, the
    /// sender aside.
    pub fn recipients_for(&self, sender: UserId) -> Vec<UserId> {
        let mut recipients: Vec<UserId> = std::iter::once(self.creator_id)
            .chain(self.members.iter().copied())
            .filter(|user| *user != sender)
            .collect();
        recipients.sort_unstable();
        recipients.dedup();
        recipients
    }

    /// A channel's name: 1 to 64 of `a-z`, `0-9`, `.`, `_` and `-`, starting with a letter or
    /// digit, so that it reads the same in a path, a query and a routing key.
    pub fn valid_name(name: &str) -> bool {
        (1..=64).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && name.as_bytes()[0].is_ascii_alphanumeric()
    }
}

/// A note handed to recipients. Committed as an effect of the change that sends it: each
/// recipient it newly reaches gets an inbox entry, and they are the audience of one
/// `note.received` whose `seq` the entries keep as the inbox's cursor. Recipients who already
/// have the note are left as they are.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub note_id: NoteId,
    pub sender_id: UserId,
    pub title: Option<String>,
    pub channel: Option<String>,
    pub recipients: Vec<UserId>,
}

/// A note in a recipient's inbox.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InboxEntry {
    pub note: Note,
    pub sender_id: UserId,
    pub sender_email: String,
    pub channel: Option<String>,
    pub delivered_at: Timestamp,
    pub listened_at: Option<Timestamp>,
    /// The position of the delivery in the event log.
    pub seq: i64,
}

/// Which part of an inbox to read.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxQuery {
    pub recipient: UserId,
    /// Only entries delivered after this position (`seq`), oldest of them first; without it,
    /// the newest entries.
    pub since: Option<i64>,
    pub sender: Option<UserId>,
    pub unlistened: bool,
    pub limit: u32,
}

/// A recipient's first listen to a note.
#[derive(Debug, Clone, PartialEq)]
pub struct Listened {
    pub note_id: NoteId,
    pub sender_id: UserId,
    pub listener_id: UserId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_names_read_the_same_everywhere() {
        for good in ["job-42", "a", "route.7_north", &"x".repeat(64)] {
            assert!(Channel::valid_name(good), "{good}");
        }
        for bad in [
            "",
            "-job",
            "Job",
            "job 42",
            "job/42",
            "jöb",
            &"x".repeat(65),
        ] {
            assert!(!Channel::valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_channel_reaches_everyone_in_it_but_the_sender() {
        let (creator, ann, bob) = (UserId::generate(), UserId::generate(), UserId::generate());
        let channel = Channel {
            name: "job-1".into(),
            creator_id: creator,
            creator_email: "creator@example.com".into(),
            created_at: Timestamp::now(),
            members: vec![ann, bob],
            member_emails: vec!["ann@example.com".into(), "bob@example.com".into()],
        };
        let sorted = |mut users: Vec<UserId>| {
            users.sort_unstable();
            users
        };
        assert_eq!(channel.recipients_for(creator), sorted(vec![ann, bob]));
        assert_eq!(channel.recipients_for(ann), sorted(vec![creator, bob]));
        assert!(channel.includes(bob) && !channel.includes(UserId::generate()));
    }
}
