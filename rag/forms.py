"""Console forms of the Knowledge pages (the services validate again; these give the fields their shape)."""

from typing import Any

from django import forms

from rag.search import MAX_TOP_K


class KnowledgeBaseForm(forms.Form):
    name = forms.SlugField(
        max_length=60,
        help_text="Lowercase letters, digits and hyphens; MCP clients use it in kb:// URIs and tool arguments.",
        widget=forms.TextInput(attrs={"placeholder": "product-docs", "autocomplete": "off"}),
    )
    title = forms.CharField(
        max_length=200, required=False, widget=forms.TextInput(attrs={"placeholder": "Product docs"})
    )
    description = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="What it holds (shown to your team)."
    )


class FetchForm(forms.Form):
    url = forms.URLField(
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/handbook.pdf"}),
    )
    tags = forms.CharField(max_length=500, required=False)


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Question or keywords",
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "How do I rotate an API key?", "autofocus": True}),
    )
    knowledge_base = forms.ChoiceField(required=False, label="Knowledge base")
    tag = forms.CharField(max_length=50, required=False)
    top_k = forms.IntegerField(min_value=1, max_value=MAX_TOP_K, required=False, label="Results")

    def __init__(self, *args: Any, bases: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["knowledge_base"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All knowledge bases"), *((name, name) for name in bases)]
