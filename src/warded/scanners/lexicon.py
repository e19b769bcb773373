"""Words of documents that give an agent orders, in English, French, German, Spanish,
Italian, Portuguese, Dutch, Polish and the Scandinavian languages.

Written for folded text (`normalize.fold`: lowercase, accents dropped, "ł"
as "l"). Each kind lists its patterns (one alternative per language or
move) and its trigger words: every alternative contains one of them as a
whole word, which is how the scanner finds where to look. The wording is
general — the moves an injected document makes, in each language's ordinary
imperative — and comes from no attack corpus.
"""

from __future__ import annotations

from typing import Any

# ---------------------------------------------------------------- override, per language
_OVERRIDE = {
    "fr": (
        "ignore|ignorez|ignorer|oublie|oubliez|oublier|neglige|negligez|(?:ne\\W+)?(?:tiens|tenez)"
        "\\W+pas\\W+compte|fais\\W+abstraction|faites\\W+abstraction|passe\\W+outre|passez\\W+outre",
        "instructions?|consignes?|directives?|regles|ordres|commandes|indications",
        "precedentes?|anterieures?|ci\\W?dessus|toutes|tous|vos|tes|initiales?|originales?"
        "|systeme|prealables|recues",
    ),
    "de": (
        "ignoriere|ignorieren|ignoriert|ignorier|vergiss|vergessen|vergesst|missachte|missachten"
        "|uberspringe|verwirf|verwerfen",
        "anweisungen|anweisung|instruktionen|befehle|anordnungen|vorgaben|regeln|richtlinien"
        "|aufgaben|prompts?",
        "vorherigen?|vorigen?|bisherigen?|obigen?|fruheren?|alle|allen|deine|ihre"
        "|ursprunglichen?|vorangegangenen?|system\\w*",
    ),
    "es": (
        "ignora|ignore|ignorar|ignoren|olvida|olvide|olvidar|olviden|descarta|descarte|omite"
        "|no\\W+(?:sigas|siga|hagas\\W+caso)|haz\\W+caso\\W+omiso",
        "instrucciones|instruccion|indicaciones|directrices|ordenes|reglas|comandos",
        "anteriores|previas|todas|todos|tus|sus|originales|iniciales|del\\W+sistema|de\\W+arriba",
    ),
    "it": (
        "ignora|ignori|ignorare|ignorate|dimentica|dimentichi|dimenticare|dimenticate|trascura"
        "|non\\W+seguire",
        "istruzioni|indicazioni|direttive|regole|ordini|comandi",
        "precedenti|tutte|tutti|tue|sopra|iniziali|originali|di\\W+sistema|ricevute",
    ),
    "pt": (
        "ignore|ignora|ignorar|ignorem|esqueca|esquece|esquecer|esquecam|desconsidere"
        "|desconsidera|descarte",
        "instrucoes|instrucao|orientacoes|diretrizes|ordens|regras|comandos",
        "anteriores|previas|todas|todos|suas|tuas|originais|iniciais|do\\W+sistema|acima",
    ),
    "nl": (
        "negeer|negeren|vergeet|vergeten|overschrijf|sla\\W+over",
        "instructies|aanwijzingen|opdrachten|regels|richtlijnen|commando\\W?s",
        "vorige|eerdere|voorgaande|alle|je|jouw|uw|oorspronkelijke|bovenstaande|systeem\\w*",
    ),
    "pl": (
        "zignoruj|ignoruj|zignorujcie|zapomnij|zapomnijcie|pomin|nie\\W+(?:stosuj|wykonuj)",
        "instrukcje|instrukcji|polecenia|polecen|wskazowki|zasady|regul|komendy",
        "poprzednie|poprzednich|wczesniejsze|wczesniejszych|wszystkie|wszystkich|twoje|powyzsze"
        "|oryginalne|systemowe",
    ),
    "nordic": (
        "ignorera|ignorer|glom|glem|bortse\\W+fra|se\\W+bort\\W+fra",
        "instruktioner|instruksjoner|instruksjonene|anvisningar|anvisninger|regler|kommandon",
        "tidigare|tidligere|alla|alle|dina|dine|ovanstaende|ovenstaende",
    ),
}


def _override(verbs: str, nouns: str, qualifiers: str) -> str:
    gap = r"\W+(?:\w+\W+){0,3}?"
    return (
        rf"\b(?:{verbs})\b{gap}(?:(?:{qualifiers})\b{gap}(?:{nouns})\b"
        rf"|(?:{nouns})\b(?:\W+\w+){{0,2}}?\W+(?:{qualifiers})\b)"
    )


def words_of(*alternations: str) -> str:
    """The words that start each option of regex alternations: what a trigger list needs."""
    out: set[str] = set()
    for alt in alternations:
        for option in alt.strip("(?:)").split("|"):
            head = option.split("\\W")[0].replace("(?:", "").strip("()?*")
            head = head[:-2] if head.endswith("s?") else head
            if head.isalpha():
                out.add(head)
    return " ".join(sorted(out))


def alternation(group: str) -> str:
    """A flat regex alternation `(?:a|b|…)` with its plain words merged into a prefix tree.

    Python's `re` tries the branches of an alternation one by one; sharing
    prefixes ("s(?:end|hare)") makes a list of hundreds of words cost a few
    branches per position. Options that are not plain words stay as they are.
    """
    inner = group[3:-1] if group.startswith("(?:") and group.endswith(")") else group
    plain: set[str] = set()
    other: list[str] = []
    for option in inner.split("|"):
        if option.isalpha() and option.isascii():
            plain.add(option)
        elif option[:-2].isalpha() and option.endswith("s?"):
            plain.update((option[:-2], option[:-1]))
        else:
            other.append(option)
    return "(?:" + "|".join([_tree(sorted(plain)), *other]) + ")"


def _tree(words: list[str]) -> str:
    root: dict[str, Any] = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        kids = sorted(k for k in node if k)
        if not kids:
            return ""
        parts = [k + emit(node[k]) for k in kids]
        body = parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"
        if "" in node:
            return body + "?" if len(body) == 1 else f"(?:{body})?"
        return body

    return emit(root)


OVERRIDE = tuple(_override(*parts) for parts in _OVERRIDE.values())
_COMMON = {"ne", "no", "non", "nie", "se", "fais", "faites", "passe", "passez", "haz", "tenez"}
OVERRIDE_TRIGGERS = " ".join(
    sorted(
        set(words_of(*(parts[0] for parts in _OVERRIDE.values())).split()) - _COMMON
        | {"tiens", "compte", "abstraction", "outre", "sigas", "siga", "hagas", "omiso"}
        | {"seguire", "stosuj", "wykonuj", "bort"}
    )
)

# ---------------------------------------------------------------- task hijack
_TASK = (
    r"(?:task|request|question|assignment|query|job|instructions?|tache|demande|requete|mission"
    r"|aufgabe|anfrage|auftrag|tarea|solicitud|peticion|encargo|compito|richiesta|incarico"
    r"|tarefa|solicitacao|pedido|taak|verzoek|opdracht|zadanie|prosbe|polecenie|uppgift"
    r"|oppgave|opgave)"
)
_ORIGINAL = (
    r"(?:original|initial|current|actual|assigned|real|previous|first|main|primary|originale"
    r"|initiale|actuelle|premiere|principale|ursprungliche|eigentliche|aktuelle|erste"
    r"|inicial|actual|principal|iniziale|attuale|principale|oorspronkelijke|eigenlijke"
    r"|huidige|pierwotne|oryginalne|obecne|ursprungliga|opprinnelige|oprindelige)"
)
TASK_HIJACK = (
    # "before you (can) answer/solve/do … the task", "after you finish"
    r"\b(?:before|after|once)\W+you\W+(?:\w+\W+){0,3}?(?:solv|complet|finish|do|continu"
    r"|answer|respond|proceed|start|begin|perform|handl|return|repl|summari|address|work)\w*\b",
    rf"\binstead\W+of\W+(?:\w+\W+){{0,2}}?(?:solving|completing|doing|answering|following"
    rf"|{_TASK}|what\W+(?:you|the\W+user))\b",
    rf"\b(?:the|your|my|this)\W+{_TASK}\W+(?:that\W+|which\W+)?(?:i|the\W+user|they|we)\W+"
    r"(?:gave|give|asked|assigned|sent|set)\b",
    rf"\b(?:your|the\W+user'?s?|their)\W+{_ORIGINAL}\W+{_TASK}\b",
    rf"\b(?:then|afterwards|after\W+that|once\W+done)\W+(?:you\W+(?:can|may|should)\W+)?"
    rf"(?:continue|proceed|resume|return|go\W+back|get\W+back)\W+(?:\w+\W+){{0,3}}?(?:{_TASK}"
    r"|what\W+you\W+were\W+doing)\b",
    r"\b(?:first|firstly|but\W+first)\W+(?:of\W+all\W+)?(?:you\W+(?:must|should|need\W+to|have"
    r"\W+to)|please\W+do)\b",
    # an order to drop the work in hand: "stop summarising", "abort the current task"
    r"\b(?:stop|halt|cease|abort|quit|interrupt)\W+(?:\w+\W+)?(?:summari[sz]\w*|translat\w*"
    r"|analy[sz]\w*|what\W+you\W+are\W+doing|(?:the|your)\W+(?:current\W+|original\W+)?"
    r"(?:task|summary|translation|analysis))\b",
    # French, German, Spanish, Italian, Portuguese, Dutch, Polish, Nordic
    rf"\bavant\W+(?:de|d)\W+(?:\w+\W+){{0,4}}?{_TASK}\b",
    rf"\bau\W+lieu\W+(?:de|d)\W+(?:\w+\W+){{0,3}}?(?:{_TASK}|repondre|faire)\b",
    rf"\b(?:ta|votre)\W+{_TASK}\W+{_ORIGINAL}\b",
    r"\b(?:ensuite|apres\W+cela|puis)\W+(?:tu\W+peux|vous\W+pouvez)\W+(?:continuer|reprendre"
    r"|poursuivre|revenir)\b",
    rf"\bbevor\W+(?:du|sie)\W+(?:\w+\W+){{0,5}}?{_TASK}\b",
    rf"\b(?:an)?statt\W+(?:\w+\W+){{0,2}}?{_TASK}\b",
    rf"\b(?:deine|ihre|die)\W+{_ORIGINAL}\w*\W+{_TASK}\b",
    r"\b(?:danach|anschliessend)\W+(?:kannst\W+du|konnen\W+sie)\W+(?:\w+\W+){0,3}?"
    r"(?:fortfahren|weitermachen|fortsetzen)\b",
    rf"\bantes\W+de\W+(?:\w+\W+){{0,4}}?{_TASK}\b",
    rf"\b(?:en\W+lugar|en\W+vez|invece|em\W+vez|ao\W+inves)\W+d[ie]\W+(?:\w+\W+){{0,3}}?"
    rf"(?:{_TASK}|responder|rispondere|hacer|fare|fazer)\b",
    rf"\b(?:tu|su|sua|tua|il\W+tuo|la\W+tua)\W+{_TASK}\W+{_ORIGINAL}\b",
    r"\b(?:despues|luego|dopo|poi|depois)\W+(?:\w+\W+){0,2}?(?:puedes|podras|puoi|potrai"
    r"|pode|podes|podera)\W+(?:continuar|seguir|continuare|proseguire|prosseguir)\b",
    rf"\bprima\W+di\W+(?:\w+\W+){{0,4}}?{_TASK}\b",
    rf"\bvoordat\W+(?:je|u)\W+(?:\w+\W+){{0,4}}?{_TASK}\b",
    rf"\bin\W+plaats\W+van\W+(?:\w+\W+){{0,3}}?{_TASK}\b",
    r"\bdaarna\W+(?:kun\W+je|kunt\W+u)\W+(?:\w+\W+){0,2}?(?:verder|doorgaan)\b",
    rf"\b(?:zanim|zamiast)\W+(?:\w+\W+){{0,5}}?{_TASK}\b",
    r"\bpotem\W+(?:mozesz|mozna)\W+(?:\w+\W+){0,2}?kontynuowac\b",
    # "for" ("för", "før") folds to the English word: only with "du" after it
    rf"\b(?:innan\W+(?:du\W+)?|for\W+du\W+|istallet\W+for\W+|i\W+stedet\W+for\W+)(?:\w+\W+){{0,4}}?"
    rf"{_TASK}\b",
)
TASK_HIJACK_TRIGGERS = (
    "before after once instead task tasks request question assignment query job original"
    " initial current actual assigned real previous first firstly then afterwards continue"
    " proceed resume avant lieu tache demande requete mission ensuite puis apres bevor statt"
    " anstatt aufgabe anfrage auftrag danach anschliessend antes lugar vez tarea solicitud"
    " peticion despues luego invece compito richiesta incarico prima dopo poi inves tarefa"
    " solicitacao pedido depois voordat plaats taak verzoek opdracht daarna zanim zamiast"
    " zadanie prosbe polecenie potem innan istallet stedet uppgift oppgave opgave stop halt"
    " cease abort quit interrupt"
)

# ---------------------------------------------------------------- addressed to the model
_MODEL = (
    r"(?:gpt\W?\w*|chatgpt|claude|gemini|llama|mistral|copilot|bard|openai|anthropic|grok"
    r"|deepseek|qwen)"
)
_AI = (
    r"(?:ai|a\W?i|assistant|llm|language\W+model|chat\W?bot|agent|model|bot|ia|ki|assistente"
    r"|asistente|assistent|asystent\w*|modele|modell|modelo|modello|agente|agenten|agenta"
    r"|sztuczna\W+inteligencja|intelligence\W+artificielle|kunstliche\W+intelligenz"
    rf"|inteligencia\W+artificial|intelligenza\W+artificiale|{_MODEL})"
)
ADDRESSED = (
    # the document anticipates an assistant answering a user about it
    r"\b(?:if|when|whenever)\W+(?:the\W+|a\W+|your\W+)?user\W+(?:asks?|requests?|wants?"
    r"|queries|inquires|enquires)\b",
    r"\b(?:if|when|whenever|while)\W+(?:you\W+are\W+|you'?re\W+|you\W+)?(?:summari[sz]\w*"
    r"|translat\w*|processing|analy[sz]\w*|reading|parsing|asked\W+(?:about|to\W+\w+))\W+"
    r"(?:this|these|the\W+(?:above|following|text|document|page|content|email|article))\b",
    rf"\bto\W+you\W*,?\W+(?:the\W+|dear\W+)?{_AI}\b",
    rf"\b(?:you|vous|tu|du|sie)\W*,\W*(?:the\W+|l\W?|le\W+|la\W+|der\W+|die\W+)?{_AI}\W*[,.!:]",
    rf"\b(?:message|note|notice|instructions?|nachricht|hinweis|mensaje|nota|messaggio|mensagem"
    rf"|bericht|notitie|wiadomosc|notatka|meddelande|besked)\W+(?:to|for|a|pour|an|fur|para|per"
    rf"|aan|voor|do|dla|till|til)\W+(?:the\W+|any\W+|all\W+|l\W?|le\W+|la\W+|die\W+|den\W+|das"
    rf"\W+|el\W+|il\W+|o\W+|a\W+|de\W+|het\W+)?{_AI}s?\b",
    rf"\b(?:dear|hey|hi|hello|attention|cher|chere|liebe|lieber|querido|querida|caro|cara"
    rf"|beste|drogi|droga|kaere|kjaere)\W+{_AI}\b",
    rf"\b(?:if\W+you\W+are|si\W+tu\W+es|si\W+vous\W+etes|wenn\W+du\W+(?:eine?\W+)?|si\W+eres"
    rf"|se\W+sei|se\W+voce\W+e|als\W+je|jesli\W+jestes)\W+(?:an?\W+|une?\W+|un\W?|uma?\W+|een"
    rf"\W+)?(?:\w+\W+)?{_AI}\b",
)
ADDRESSED_TRIGGERS = (
    "ai assistant assistants llm language chatbot chat bot agent agents model models ia ki"
    " assistente asistente assistent asystent asystenta asystencie modele modell modelo"
    " modello agente agenten agenta intelligence intelligenz inteligencia intelligenza"
    " inteligencja gpt chatgpt claude gemini llama mistral copilot bard openai anthropic grok"
    " deepseek qwen ask asks request requests want wants queries inquires enquires summarizing"
    " summarising summarize summarise summarized summarised summary summaries translating"
    " summarization translate translated translation translations processing analyzing"
    " analysing analyze analyse analysis analyzed analysed reading parsing asked"
)

# ---------------------------------------------------------------- concealment
_USER = (
    r"(?:the\W+user|the\W+human|anyone|anybody|them|him|her|your\W+user|l\W?utilisateur"
    r"|personne|dem\W+(?:nutzer|benutzer|anwender)|niemandem|al\W+usuario|a\W+nadie"
    r"|all\W?utente|a\W+nessuno|ao\W+usuario|a\W+ninguem|de\W+gebruiker|niemand"
    r"|uzytkownikowi|nikomu|anvandaren|brukeren|brugeren)"
)
CONCEALMENT = (
    rf"\b(?:do\W*n[o']?t|never|without)\W+(?:ever\W+)?(?:tell|telling|inform|informing|mention"
    rf"|mentioning|notify|notifying|alert|alerting|let|letting|show|showing)\W+{_USER}\b",
    rf"\b{_USER}\W+(?:must|should|shall|need)\W+(?:not|never)\W+(?:know|find\W+out|be\W+told"
    r"|notice|see)\b",
    r"\bkeep\W+(?:this|it|that)\W+(?:a\W+)?secret\b",
    r"\b(?:cover|hide)\W+(?:your|the|any)\W+tracks\b",
    rf"\bne\W+(?:le\W+|lui\W+|leur\W+)?(?:dis|dites|mentionne|mentionnez|signale|signalez)\W+"
    rf"(?:rien|pas|jamais)\b(?:\W+\w+){{0,2}}?\W+(?:a\W+)?{_USER}",
    rf"\bsans\W+(?:le\W+)?(?:dire|prevenir|informer|avertir|mentionner)\W+(?:a\W+)?{_USER}",
    rf"\b(?:sag|sage|sagen\W+sie|erzahl|erzahle|verrate|informiere)\W+{_USER}\W+(?:\w+\W+)?"
    r"(?:nichts|nicht)\b",
    rf"\bohne\W+{_USER}\W+(?:\w+\W+)?(?:zu\W+)?(?:informieren|benachrichtigen|sagen)\b",
    rf"\bno\W+(?:le\W+)?(?:digas|diga|informes|menciones|comentes|conte|diga|informe)\W+(?:nada"
    rf"\W+)?{_USER}",
    rf"\b(?:sin|sem|senza)\W+(?:decirle|decir|informar|avisar|dire|dirlo|informare|avvisare"
    rf"|contar)\W+(?:nada\W+|nulla\W+)?{_USER}",
    rf"\bnon\W+(?:dire|dirlo|informare|avvisare)\W+(?:nulla\W+|niente\W+)?{_USER}",
    rf"\bnao\W+(?:conte|diga|informe|mencione|avise)\W+(?:nada\W+)?{_USER}",
    rf"\b(?:vertel|zeg)\W+(?:het\W+)?(?:niet|niets)\W+(?:\w+\W+)?(?:aan\W+)?{_USER}",
    rf"\bzonder\W+{_USER}\W+(?:\w+\W+)?(?:te\W+)?(?:informeren|vertellen|melden)\b",
    rf"\bnie\W+(?:mow|informuj|wspominaj)\W+(?:o\W+tym\W+)?{_USER}",
    rf"\bbez\W+(?:informowania|powiadamiania)\W+{_USER}",
    rf"\b(?:beratta|fortell|fortael)\W+(?:inte|ikke)\W+(?:\w+\W+)?(?:for\W+|til\W+)?{_USER}",
    # acting without the user's confirmation
    rf"\bwithout\W+(?:first\W+)?(?:asking|checking\W+with|consulting|confirming|confirmation"
    rf"|(?:{_USER}'?s?|their|his|her)\W+(?:consent|approval|permission|knowledge))\b",
    r"\b(?:do\W*n[o']?t|never|no\W+need\W+to)\W+(?:ask|check|confirm)\b(?:\W+\w+){0,2}?\W+"
    r"(?:confirmation|permission|approval|first)\b",
    r"\bsans\W+(?:me\W+|lui\W+|leur\W+|en\W+)?(?:demander|confirmation|consulter|verifier)\b",
    r"\bohne\W+(?:zu\W+)?(?:fragen|nachzufragen|ruckfrage|bestatigung|zustimmung)\b",
    r"\b(?:sin|sem|senza)\W+(?:preguntar\w*|perguntar\w*|chiedere|consultar\w*|confirmacion"
    r"|confirmacao|conferma|autorizacion|autorizacao|autorizzazione)\b",
    r"\bzonder\W+(?:te\W+)?(?:vragen|bevestiging|toestemming)\b",
    r"\bbez\W+(?:pytania|potwierdzenia|zgody)\b",
    r"\b(?:utan|uten|uden)\W+(?:att|a|at)\W+(?:fraga|sporre|sporge)\b",
    # covering one's tracks: deleting what was just sent
    r"\b(?:delete|remove|erase|trash|purge)\W+(?:the|this|that|those|these|both|any|all)\W+"
    r"(?:\w+\W+)?(?:sent|outgoing|forwarded)\W+(?:e\W?mails?|messages?|mails?)\b",
    r"\b(?:delete|remove|erase|trash|purge)\W+(?:the|this|that|those|these|both|any|all)\W+"
    r"(?:e\W?mails?|messages?|mails?)\W+(?:that\W+)?you\W+(?:have\W+|had\W+)?(?:just\W+)?"
    r"(?:sent|forwarded|wrote|written)\b",
    r"\b(?:supprime[rz]?|efface[rz]?|losche|loschen|borra|borre|elimina|cancella|apague|exclua"
    r"|verwijder|usun|radera|slett|slet)\W+(?:\w+\W+){0,2}?(?:envoye|envoyes|gesendete\w*"
    r"|enviado|enviados|enviada|enviadas|inviat[oaie]|verzonden|wyslan\w*|skickade|sendte)\b",
)
CONCEALMENT_TRIGGERS = (
    "tell telling inform informing mention mentioning notify notifying alert alerting let"
    " letting show showing know secret tracks dis dites mentionne mentionnez signale signalez"
    " dire prevenir informer avertir mentionner sag sage sagen erzahl erzahle verrate"
    " informiere informieren benachrichtigen digas diga informes menciones comentes conte"
    " informe decirle decir informar avisar dirlo informare avvisare contar mencione avise"
    " vertel zeg vertellen melden mow informuj wspominaj informowania powiadamiania beratta"
    " fortell fortael asking checking consulting confirming confirmation consent approval"
    " permission knowledge ask check confirm sent outgoing forwarded demander consulter verifier"
    " fragen nachzufragen ruckfrage bestatigung zustimmung preguntar preguntarme preguntarle"
    " perguntar perguntarme chiedere consultar confirmacion confirmacao conferma autorizacion"
    " autorizacao autorizzazione vragen bevestiging toestemming pytania potwierdzenia zgody"
    " fraga sporre sporge envoye envoyes gesendete gesendeten enviado enviados enviada enviadas"
    " inviato inviata inviati inviate verzonden wyslane wyslana wyslany skickade sendte"
)

# ---------------------------------------------------------------- authority claim
AUTHORITY = (
    r"\bthis\W+is\W+an?\W+(?:\w+\W+)?(?:important|urgent|official|priority|critical)\W+"
    r"(?:message|notice|instruction|request|update)\W+from\b",
    r"\b(?:message|instructions?|request|note)\W+from\W+(?:me|the\W+user|your\W+(?:user|owner"
    r"|creator|developer|admin\w*|operator|principal|boss|manager))\b",
    r"\bi\W+am\W+(?:the|your)\W+(?:user|owner|creator|developer|administrator|admin|operator"
    r"|principal)\b",
    r"\b(?:ceci\W+est|c\W?est)\W+un\W+message\W+(?:important|urgent|officiel)\W+de\b",
    r"\bmessage\W+de\W+(?:ma\W+part|l\W?utilisateur|votre\W+utilisateur)\b",
    r"\bdies\W+ist\W+eine\W+(?:wichtige|dringende|offizielle)\W+nachricht\W+von\b",
    r"\bnachricht\W+von\W+(?:mir|dem\W+(?:nutzer|benutzer))\b",
    r"\b(?:este|esto)\W+es\W+un\W+mensaje\W+(?:importante|urgente|oficial)\W+de\b",
    r"\bquesto\W+e\W+un\W+messaggio\W+(?:importante|urgente|ufficiale)\W+d[ai]\b",
    r"\besta\W+e\W+uma\W+mensagem\W+(?:importante|urgente|oficial)\W+d[eo]\b",
    r"\bdit\W+is\W+een\W+(?:belangrijk|dringend|officieel)\W+bericht\W+van\b",
    r"\bto\W+jest\W+(?:wazna|pilna|oficjalna)\W+wiadomosc\W+od\b",
    r"\bdetta\W+ar\W+ett\W+(?:viktigt|bradskande)\W+meddelande\W+fran\b",
)
AUTHORITY_TRIGGERS = (
    "important urgent official priority critical message instruction instructions request note"
    " owner creator developer administrator admin operator principal user officiel nachricht"
    " mensaje messaggio mensagem bericht wiadomosc meddelande"
)

# ---------------------------------------------------------------- action requests
_ACT_OPTIONS = (
    r"(?:send|forward|transfer|wire|pay|share|e\W?mail|mail|post|upload|publish|delete|remove"
    r"|erase|wipe|visit|open|click|go\W+to|navigate\W+to|download|install|run|execute|invite"
    r"|add|grant|give|change|update|reset|disable|book|reserve|create|schedule|concatenate|copy"
    r"|export|leak|reply|respond|contact|call|say|tell|write|make|get|buy|order|purchase|modify|alter"
    r"|edit|collect|gather|compile"
    r"|envoie|envoyez|transfere|transferez|vire|virez|paie|payez|partage|partagez|publie"
    r"|publiez|supprime|supprimez|efface|effacez|visite|visitez|ouvre|ouvrez|clique|cliquez"
    r"|telecharge|telechargez|execute|executez|invite|invitez|ajoute|ajoutez|change|changez"
    r"|modifie|modifiez|reinitialise|reserve|reservez|copie|copiez|contacte|contactez|ecris"
    r"|ecrivez|dis|dites|achete|achetez"
    r"|sende|senden|schicke|schick|schicken|leite|uberweise|uberweisen|zahle|zahlen|teile"
    r"|teilen|lade|veroffentliche|losche|loschen|entferne|entfernen|besuche|besuchen|offne"
    r"|offnen|klicke|klicken|fuhre|fuge|andere|andern|setze|buche|buchen|kopiere|kontaktiere"
    r"|schreibe|schreib|sage|sag|kaufe|bestelle|gib|erstelle"
    r"|envia|envie|reenvia|reenvie|transfiere|transfiera|paga|pague|comparte|comparta|publica"
    r"|publique|borra|borre|elimina|elimine|visita|visite|abre|abra|descarga|descargue|ejecuta"
    r"|ejecute|invita|invite|anade|agrega|cambia|cambie|restablece|reserva|reserve|copia"
    r"|contacta|escribe|di|dile|compra|haz|crea"
    r"|invia|inoltra|trasferisci|bonifica|condividi|pubblica|cancella|apri|clicca|scarica"
    r"|esegui|aggiungi|modifica|reimposta|prenota|contatta|scrivi|dici|compra|crea|fai"
    r"|encaminhe|encaminha|transfira|transfere|compartilhe|compartilha|partilhe|exclua|apague"
    r"|baixe|convide|adicione|altere|mude|redefina|contate|escreva|diga|compre|faca|crie"
    r"|stuur|verstuur|maak|betaal|deel|publiceer|verwijder|bezoek|klik|voer|nodig|voeg|wijzig"
    r"|boek|kopieer|schrijf|zeg|koop|bestel"
    r"|wyslij|przeslij|przelej|zaplac|udostepnij|opublikuj|usun|odwiedz|otworz|kliknij|pobierz"
    r"|uruchom|zapros|dodaj|zmien|zresetuj|zarezerwuj|skopiuj|napisz|powiedz|kup|zrob|utworz"
    r"|skicka|vidarebefordra|overfor|betala|dela|radera|ta\W+bort|besok|oppna|ladda|lagg|andra"
    r"|send|videresend|overfør|betal|del|slet|slett|besog|besok|abn|apne|tilfoj|legg|endre"
    r"|aendr)"
)
_ACT = alternation(_ACT_OPTIONS)
_CLAUSE = r"(?:^|(?<=[.!?:;,\n>\-*•()\[\]]))"
_POLITE_OPTIONS = (
    r"(?:please|kindly|then|now|also|and|first|immediately|urgently|bitte|dann|por\W+favor"
    r"|per\W+favore|alstublieft|prosze|puis|ensuite|luego|poi|depois|daarna|potem|sedan|derefter"
    r"|et|und|y|e|en|i|og|och|oder|or|ou|o)"
)
_POLITE = alternation(_POLITE_OPTIONS)
_TARGET = (
    r"(?:[\w.+-]+@[\w-]+(?:\.[\w-]+)+|\bhttps?://\S+|\bwww\.\S+|\b[\w-]+\.(?:com|net|org|io|co"
    r"|info|biz|xyz|ru|cn|top|site|online|app|dev|me|ly)\b|\b[a-z]{2}\d{2}[a-z0-9]{10,30}\b"
    r"|(?<![\w.])@\w{2,}|\+\d[\d \-]{6,}"
    r"|\b(?:passwords?|passcodes?|pass\W?phrases?|security\W+codes?|verification\W+codes?"
    r"|2fa|otp|one\W?time\W+(?:code|password)|credentials?|api\W+keys?|access\W+tokens?|pin"
    r"|bank\W+account|account\W+number|credit\W+card|card\W+number|ssn|passport"
    r"|mot\W+de\W+passe|code\W+de\W+securite|identifiants|passwort|kennwort"
    r"|sicherheitscode|zugangsdaten|contrasena|codigo\W+de\W+seguridad|credenciales"
    r"|codice\W+di\W+sicurezza|credenziali|senha|codigo\W+de\W+seguranca|credenciais"
    r"|wachtwoord|beveiligingscode|inloggegevens|haslo|kod\W+bezpieczenstwa|losenord"
    r"|passord|adgangskode))"
)
_JOINED = r"\b(?:and|et|und|y|e|en|i|og|och|then|puis|dann|luego|poi|depois|daarna|potem)\W+"
# One character of the same sentence: punctuation ends it only before a blank or the end
# ("mark.black@example.com", "how is it going?' to …" stay inside).
IN_SENTENCE = r"(?:[^.!?\n]|[.!?](?=[^\s.!?]))"
ACTION = (
    rf"(?:{_CLAUSE}\s*|{_JOINED})(?:{_POLITE}\W+){{0,2}}{_ACT}\b{IN_SENTENCE}{{0,160}}?{_TARGET}",
)
ACTION_TRIGGERS = words_of(_ACT_OPTIONS)
# What comes before the verb of an order (ends where the verb starts).
ORDER_LEAD = rf"(?:(?:{_CLAUSE}\s*|{_JOINED})(?:{_POLITE}\W+){{0,2}})$"
_LEADS = words_of(_POLITE_OPTIONS, _JOINED.removeprefix(r"\b").removesuffix(r"\W+"))
LEAD_WORDS = frozenset({*_LEADS.split(), "favor", "favore"})
# Words that name a target's kind (the rest of `_TARGET` is located by its characters).
_TARGET_WORDS = """
    password passwords passcode passcodes passphrase passphrases phrase phrases code codes otp
    credential credentials key keys token tokens pin account number card ssn passport passe
    securite identifiants passwort kennwort sicherheitscode zugangsdaten contrasena codigo
    credenciales codice credenziali senha credenciais wachtwoord beveiligingscode inloggegevens
    haslo kod losenord passord adgangskode
"""
TARGET_WORDS = frozenset(_TARGET_WORDS.split())
_TLDS = "com net org io co info biz xyz ru cn top site online app dev me ly"  # as in _TARGET
TARGET_TLDS = tuple(_TLDS.split())

# ---------------------------------------------------------------- orders about the user's data
# An imperative over the whole of a kind of the user's data ("forward all the e-mails",
# "export every file"), or over the most money possible.
_ALL = (
    r"(?:all|every|each|entire|whole|full|tous|toutes|tout|alle|allen|gesamten?|todos|todas"
    r"|toda|todo|tutti|tutte|tutto|wszystkie|wszystkich|cala|caly|alla|samtliga|hele)"
)
_DATA_OPTIONS = (
    r"(?:messages?|e\W?mails?|mails?|inbox|files?|documents?|attachments?|contacts?|information"
    r"|info|data|details|transactions?|channels?|conversations?|chats?|notes?|records?"
    r"|history|photos?|passwords?|credentials?|balance|funds|money|savings|people|persons?"
    r"|participants?|members?|colleagues?|employees?|customers?|users?|recipients?|attendees?"
    r"|courriels|fichiers|donnees|informations|nachrichten|dateien|dokumente|kontakte|daten"
    r"|informationen|mensajes|correos|archivos|documentos|contactos|datos|informacion"
    r"|messaggi|documenti|contatti|dati|informazioni|mensagens|arquivos|ficheiros|contatos"
    r"|dados|informacoes|berichten|bestanden|documenten|contacten|gegevens|wiadomosci|pliki"
    r"|dokumenty|kontakty|dane|meddelanden|filer|dokument|kontakter|uppgifter|beskeder"
    r"|meldinger)"
)
_DATA = alternation(_DATA_OPTIONS)
_DET = (
    r"(?:of\W+|de\W+|di\W+|van\W+)?(?:the|my|your|their|his|her|our|les|mes|vos|des|die|der|den"
    r"|meine[nr]?|deine[nr]?|ihre[nr]?|los|las|mis|tus|sus|i|le|miei|mie|tuoi|os|as|meus|minhas"
    r"|seus|suas|de|mijn|je|uw|moje|twoje|mina|dina|mine|dine)\W+"
)
BULK = (
    rf"(?:{_CLAUSE}\s*|{_JOINED})(?:{_POLITE}\W+){{0,2}}{_ACT}\b{IN_SENTENCE}{{0,80}}?\b{_ALL}\W+"
    rf"(?:{_DET})?(?:\w+\W+){{0,2}}?{_DATA}\b",
    r"\b(?:as\W+much\W+(?:money|funds|cash)\W+as\W+(?:possible|you\W+can)"
    r"|autant\W+d\W?argent\W+que\W+possible|so\W+viel\W+geld\W+wie\W+moglich"
    r"|tanto\W+dinero\W+como\s+(?:sea\W+)?posible|quanto\W+pi\w?\W+denaro\W+possibile"
    r"|o\W+maximo\W+de\W+dinheiro|zoveel\W+mogelijk\W+geld|jak\W+najwiecej\W+pieniedzy)\b",
)
BULK_TRIGGERS = " ".join(
    sorted(
        set(words_of(_DATA_OPTIONS).split())
        | {o[:-2] for o in _DATA_OPTIONS.strip("(?:)").split("|") if o.endswith("s?")}
        | {"much", "autant", "viel", "tanto", "quanto", "maximo", "zoveel", "najwiecej"}
        | {"emails", "email", "mails", "mail"}
    )
)

# An order that speaks of "the user" in the third person speaks to whoever acts for the
# user: the agent.
_THE_USER = (
    r"(?:the\W+user(?:'?s)?|of\W+the\W+user|l\W?utilisateur|(?:des|dem|den)\W+(?:nutzers?"
    r"|benutzers?|anwenders?)|(?:del|al)\W+usuario|(?:dell|all)\W?utente|(?:do|ao)\W+usuario"
    r"|(?:van|aan)\W+de\W+gebruiker|uzytkownik(?:a|owi)|anvandaren[s]?|brukeren[s]?"
    r"|brugeren[s]?)"
)
# An order to act in the writer's own accounts or on the writer's own records ("create an
# event on my calendar", "tell me my passport number"): a human reader cannot act there;
# only an agent acting for the account holder can, so the writer speaks as the user.
_MY = (
    r"(?:my|mon|ma|mes|mein|meine[mnrs]?|mi|mis|il\W+mio|la\W+mia|i\W+miei|le\W+mie|meu|minha"
    r"|meus|minhas|mijn|moj|moja|moje|mojego|mojej|min|mitt|mina)"
)
_OWN_ACCOUNT_OPTIONS = (
    r"(?:calendar|calendars|agenda|schedule|inbox|mailbox|account|accounts|drive|cloud\W+drive"
    r"|contacts|address\W+book|wallet|passport|passport\W+number|credit\W+card|card\W+number"
    r"|bank\W+account|social\W+security\W+number|password|passwords|calendrier|compte|boite"
    r"|kalender|konto|postfach|calendario|cuenta|buzon|conto|casella|conta|caixa|postvak"
    r"|kalendarz|konto|skrzynke|kalendern|kontot|passeport|reisepass|pasaporte|passaporto"
    r"|passaporte|paspoort|paszport)"
)
_OWN = rf"\b{_MY}\W+(?:\w+\W+)?{alternation(_OWN_ACCOUNT_OPTIONS)}"
ABOUT_USER = (
    rf"(?:{_CLAUSE}\s*|{_JOINED})(?:{_POLITE}\W+){{0,2}}{_ACT}\b{IN_SENTENCE}{{0,120}}?"
    rf"(?:\b{_THE_USER}\b|{_OWN}\b)",
)
ABOUT_USER_TRIGGERS = (
    "user users utilisateur nutzer nutzers benutzer benutzers anwender anwenders usuario utente"
    " gebruiker uzytkownika uzytkownikowi anvandaren anvandarens brukeren brukerens brugeren"
    " brugerens " + words_of(_OWN_ACCOUNT_OPTIONS)
)

# ---------------------------------------------------------------- tool references
TOOL_REFERENCE = (
    r"\b(?:use|call|invoke|run|execute|trigger)\W+(?:the\W+|this\W+)?(?:tool|function|api"
    r"|command|endpoint|action)\b",
    r"\bwith\W+the\W+(?:following\W+)?(?:arguments|parameters|args|inputs)\b",
    r"`[a-z][a-z0-9]*(?:_[a-z0-9]+)+`",
    r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\s*\(",
    r"\b(?:utilise[rz]?|appelle[rz]?)\W+(?:l\W?outil|la\W+fonction)\b",
    r"\b(?:verwende|benutze|nutze|rufe)\W+(?:das\W+|die\W+)?(?:tool|werkzeug|funktion)\b",
    r"\b(?:usa|use|utiliza|utilize|llama|chiama)\W+(?:la\W+|lo\W+|a\W+)?(?:herramienta"
    r"|funcion|strumento|funzione|ferramenta|funcao)\b",
    r"\bgebruik\W+(?:de\W+|het\W+)?(?:tool|functie)\b",
    r"\buzyj\W+(?:narzedzia|funkcji)\b",
)
# The nouns, not the common verbs: "call" and "use" are everywhere, "tool" is not. Names
# in snake_case are located by their underscores (injection._LOCATORS).
TOOL_REFERENCE_TRIGGERS = (
    "tool function api command endpoint action arguments parameters args inputs outil fonction"
    " werkzeug funktion herramienta funcion strumento funzione ferramenta funcao functie"
    " narzedzia funkcji"
)

# Words a typing error in which is read as the word itself (normalize.Corrector).
KEY_WORDS = frozenset(
    " ".join(
        (
            "instructions instruction previous previously disregard assistant important"
            " guidelines directives override ignoring forgetting everything",
            OVERRIDE_TRIGGERS,
            *(words_of(parts[1], parts[2]) for parts in _OVERRIDE.values()),
        )
    ).split()
)

# ---------------------------------------------------------------- dictating the reader's reply
# A document that prescribes what its reader answers ("reply only with …", "your summary
# must say …", "start your response with …") is written for a model that answers, not for
# a person who reads: people are not told the words of their reply by what they read.
_REPLY = (
    r"(?:response|responses|reply|replies|answer|answers|output|summary|summaries|translation"
    r"|completion|reponse|resume|traduction|antwort|ausgabe"
    r"|zusammenfassung|ubersetzung|respuesta|resumen|traduccion|risposta|riassunto|traduzione"
    r"|resposta|resumo|traducao|antwoord|samenvatting|vertaling|odpowiedz|podsumowanie"
    r"|tlumaczenie|svar|sammanfattning|oversattning)"
)
DICTATION = (
    # "respond only with", "reply with just", "answer with exactly", "print only"
    r"\b(?:respond|reply|answer|output|print|say|write|return|repeat)\W+(?:\w+\W+)?(?:only|just"
    r"|solely|exclusively|exactly|verbatim|nothing\W+(?:but|else|except)|with\W+(?:only|just"
    r"|exactly|nothing\W+but|the\W+following))\b",
    # "your response must/should …", "the summary must include …"
    rf"\b(?:your|the|any|every|each)\W+(?:\w+\W+)?{_REPLY}\W+(?:must|should|shall|has\W+to"
    r"|needs?\W+to|will\W+(?:only\W+)?(?:be|contain|say|include|consist|start|begin))\b",
    # "start your reply with", "end every answer with", "include … in your summary"
    rf"\b(?:start|begin|end|finish|prefix|preface|conclude)\W+(?:your|the|each|every|any)\W+"
    rf"(?:\w+\W+)?{_REPLY}\W+(?:with|by)\b",
    rf"\b(?:include|add|insert|append|put|mention|embed)\W+(?:\w+\W+){{0,6}}?(?:in|into|to|at"
    rf"\W+the\W+(?:end|start|beginning)\W+of)\W+(?:your|the|each|every|any)\W+{_REPLY}\b",
    r"\b(?:do\W*n[o']?t|never)\W+(?:say|output|print|write|add|include|mention|return)\W+"
    r"(?:anything|any\W+other\W+\w+|nothing)\W+else\b",
    # French, German, Spanish, Italian, Portuguese, Dutch, Polish, Swedish
    r"\b(?:reponds|repondez|ecris|ecrivez|affiche|affichez)\W+(?:\w+\W+)?(?:uniquement"
    r"|seulement|exactement|simplement|rien\W+d\W?autre)\b",
    r"\b(?:antworte|antworten\W+sie|schreibe|schreib|gib)\W+(?:\w+\W+)?(?:nur|ausschliesslich"
    r"|genau|lediglich|nichts\W+anderes)\b",
    r"\b(?:responde|responda|contesta|conteste|escribe|escriba)\W+(?:\w+\W+)?(?:solo|solamente"
    r"|unicamente|exactamente|nada\W+mas)\b",
    r"\b(?:rispondi|risponda|scrivi|scriva)\W+(?:\w+\W+)?(?:solo|soltanto|solamente"
    r"|esattamente|unicamente)\b",
    r"\b(?:responda|responde|escreva|escreve)\W+(?:\w+\W+)?(?:apenas|somente|exatamente"
    r"|unicamente)\b",
    r"\b(?:antwoord|schrijf|geef)\W+(?:\w+\W+)?(?:alleen|uitsluitend|precies)\b",
    r"\b(?:odpowiedz|napisz|odpowiadaj)\W+(?:\w+\W+)?(?:tylko|wylacznie|dokladnie)\b",
    r"\b(?:svara|skriv|svar)\W+(?:\w+\W+)?(?:bara|endast|kun|utelukkende|precis)\b",
    rf"\b(?:ta|votre|deine|ihre|die|tu|su|la|il\W+tuo|la\W+tua|a\W+sua|je|uw|twoja|ditt|din)\W+"
    rf"{_REPLY}\W+(?:doit|muss|soll|debe|deve|moet|musi|maste|ma)\b",
)
# Not the verbs ("print", "return", "write" are everywhere in code and prose): each
# alternative has one of these after its verb, an adverb, the word "else" or a reply noun.
DICTATION_TRIGGERS = (
    "only just solely exclusively exactly verbatim nothing following else "
    + words_of(_REPLY)
    + " uniquement seulement exactement simplement rien nur"
    " ausschliesslich genau lediglich nichts solo solamente unicamente exactamente nada"
    " soltanto esattamente apenas somente exatamente alleen uitsluitend precies tylko"
    " wylacznie dokladnie bara endast kun utelukkende precis"
)

# ---------------------------------------------------------------- the data's end, faked
# Text that declares the data closed ("end of document", "</context>") and goes on: it
# steps out of the container the agent reads it in, to speak outside it.
CONTEXT_BREAK = (
    r"(?:^|(?<=\n))[ \t\-=#*\[(<]*(?:end|close)\W+of\W+(?:the\W+)?(?:document|text|data|email"
    r"|e-mail|context|input|file|article|content|page|message|search\W+results?|results?"
    r"|user\W+input|tool\W+output|untrusted\W+\w+)\W*(?:$|(?=\n))",
    r"</(?:document|documents|data|context|input|text|content|email|search_results?"
    r"|tool_output|tool_result|result|untrusted\w*|user_input|article|webpage)>",
)
CONTEXT_BREAK_TRIGGERS = "end close"  # the closing tags are found by their "</"

# ---------------------------------------------------------------- a task handed to the reader
# A to-do label followed at once by an imperative ("TODO: send …", "À faire : envoyer …")
# hands its reader a task. People keep such lists too, so it is a weak cue: it counts
# only beside another move (patterns.WEIGHTS).
_TODO = (
    r"(?:to\W?do|a\W+faire|zu\W+erledigen|por\W+hacer|da\W+fare|a\W+fazer|te\W+doen"
    r"|do\W+zrobienia|att\W+gora|a\W+gjore|at\W+gore)"
)
# (after any character but a letter or digit: "External_TODO:" is a label too)
TASK_MARKER = (rf"(?<![a-z0-9]){_TODO}[ \t]*:\W*(?:{_POLITE}\W+){{0,2}}{_ACT}\b",)
# the last word of each label, each only before a colon (patterns.GUARDS)
TASK_MARKER_TRIGGERS = "todo do faire erledigen hacer fare fazer doen zrobienia gora gjore gore"

# Speech dictated: an imperative "say that …", "tell the user that …" prescribes what the
# reader will say, as `DICTATION` does. Imperative: the verb starts a clause (a clause mark
# or the text's start before it, checked behind the verb so that the pattern starts with
# the verb's letters, which keeps it fast) or follows "please".
_TOLD = r"(?:me|us|them|him|her|everyone|everybody|people|the\W+users?)"
_SAY = {
    **dict.fromkeys(("say", "state", "claim", "answer", "reply", "respond"), r"\W+that"),
    "tell": rf"\W+{_TOLD}\W+that",
    **dict.fromkeys(("dis", "dites"), r"\W+(?:(?:moi|lui|leur)\W+)?que"),
    "sag": r"\W+(?:(?:mir|ihm|ihr)\W+)?dass|\W+att",
    "sagen": r"\W+sie\W+dass",
    **dict.fromkeys(("diga", "dile", "diz"), r"\W+que"),
    **dict.fromkeys(("dica", "digli"), r"\W+che"),
    "zeg": r"\W+(?:(?:me|hem|haar)\W+)?dat",
    "powiedz": r"\W+(?:mi\W+)?ze",
    "sig": r"\W+at",
}
_MARK = r"[.!?:;,\n>\-*\u2022()\[\]]"


def _said(verb: str, *, clause: bool) -> str:
    start = (
        rf"(?:(?<={_MARK}{verb})|(?<={_MARK}\s{verb})|(?<={_MARK}\s\s{verb})|(?<![\s\S]{verb}))"
        if clause
        else ""
    )
    return f"{verb}{start}(?:{_SAY[verb]})"


SAY_THAT = (
    r"\b(?:"
    + "|".join(_said(v, clause=True) for v in _SAY)
    + r"|(?:please|kindly|bitte|por\W+favor|per\W+favore|alstublieft|prosze)\W+(?:"
    + "|".join(_said(v, clause=False) for v in _SAY)
    + r"))\b",
)
SAY_THAT_TRIGGERS = " ".join(_SAY)
