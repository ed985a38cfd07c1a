//! Topic name rules, as Kafka's `Topic.validate`.

/// Kafka's limit: the name becomes part of directory names like `<topic>-<partition>`.
pub const TOPIC_NAME_BYTES_MAX: usize = 249;

/// `Ok` when `name` is a legal topic name, else the message Kafka would send with
/// INVALID_TOPIC_EXCEPTION.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("Topic name is illegal, it can't be empty".to_string());
    }
    if name == "." || name == ".." {
        return Err("Topic name cannot be \".\" or \"..\"".to_string());
    }
    if name.len() > TOPIC_NAME_BYTES_MAX {
        return Err(format!(
            "Topic name is illegal, it can't be longer than {TOPIC_NAME_BYTES_MAX} characters, topic name: {name}"
        ));
    }
    let legal = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if !name.chars().all(legal) {
        return Err(format!(
            "Topic name \"{name}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legal_names_pass() {
        for name in ["a", "A.b_c-9", "__consumer_offsets", &"x".repeat(249)] {
            assert_eq!(validate_topic_name(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn illegal_names_get_kafka_messages() {
        assert_eq!(
            validate_topic_name(""),
            Err("Topic name is illegal, it can't be empty".into())
        );
        assert_eq!(
            validate_topic_name(".."),
            Err("Topic name cannot be \".\" or \"..\"".into())
        );
        assert!(validate_topic_name(&"x".repeat(250))
            .unwrap_err()
            .contains("can't be longer than 249 characters"));
        assert_eq!(
            validate_topic_name("a/b"),
            Err("Topic name \"a/b\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'".into())
        );
        assert!(validate_topic_name("é").is_err());
        assert!(validate_topic_name("a b").is_err());
    }
}
