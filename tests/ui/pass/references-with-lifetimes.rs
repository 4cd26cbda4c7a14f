use extend_hooks::{extension_point, Container};

#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Note<'a> {
    pub text: &'a str,
    pub tags: Vec<&'a str>,
}

#[extension_point(name = "on-note", timeout = "1s")]
pub async fn on_note<'a, 'b>(tenant: &'a Container, note: &'b Note<'b>, author: &'a str) -> Option<String>;

#[extension_point(name = "note-deleted", mode = "async")]
pub fn note_deleted(tenant: &Container, note: &Note<'_>);

async fn caller(tenant: &Container) -> Result<(), extend_hooks::Error> {
    let text = String::from("hello");
    let note = Note { text: &text, tags: vec!["a"] };
    let answer: Option<Option<String>> = on_note(tenant, &note, "ada").await?;
    let _ = answer;
    note_deleted(tenant, &note)?;
    Ok(())
}

fn main() {
    let _ = caller;
}
